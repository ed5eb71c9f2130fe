import type { Feeds, Outputs, TensorData, TensorMsg } from './protocol.js';

export interface BatcherOptions {
  /** Most items merged into one session.run. 1 turns batching off. */
  maxBatch: number;
  /**
   * How long the first item of a batch may wait for company while a worker is free. 0: send at
   * once; under load batches still form, from what arrives while every worker is busy.
   */
  maxWaitMs: number;
  /** Batches that may run at once (the model's worker count). */
  concurrency: number;
  /** Items allowed to wait; beyond that `run` rejects with `rejectFull()` (backpressure). Default: no bound. */
  maxPending?: number;
  rejectFull?: () => Error;
  /** The timer a batch waits on (default: setTimeout, or what `setDefaultBatchTimer` installed). */
  timer?: BatchTimer;
}

/** Starts and cancels the wait of a batch for company. Tests pass their own to decide when a wait ends. */
export interface BatchTimer {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimer: BatchTimer = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
let defaultTimer = realTimer;

/**
 * Test seam: the timer of batchers created from now on (the ONNX engine builds its own when a
 * model loads). Returns a function restoring the real one.
 */
export function setDefaultBatchTimer(timer: BatchTimer): () => void {
  defaultTimer = timer;
  return () => {
    defaultTimer = realTimer;
  };
}

/** Runs one merged batch; the batcher splits the outputs by item. */
export type BatchRunner = (feeds: Feeds, outputs: string[] | undefined, signal?: AbortSignal) => Promise<Outputs>;

interface Item {
  feeds: Feeds;
  outputs?: string[];
  key: string;
  signal?: AbortSignal;
  resolve: (o: Outputs) => void;
  reject: (err: unknown) => void;
  onAbort?: () => void;
}

/** Items can share a batch when they have the same inputs (names, dtypes, per-item dims) and ask for the same outputs. */
function batchKey(feeds: Feeds, outputs?: string[]): string {
  const inputs = Object.keys(feeds)
    .sort()
    .map((name) => {
      const t = feeds[name]!;
      return `${name}:${t.data.constructor.name}:${t.dims.slice(1).join('x')}`;
    });
  return `${inputs.join(',')}|${outputs?.join(',') ?? '*'}`;
}

function concat(tensors: TensorMsg[]): TensorMsg {
  const first = tensors[0]!;
  const total = tensors.reduce((a, t) => a + t.data.length, 0);
  const data = new (first.data.constructor as { new (n: number): TensorData })(total);
  let offset = 0;
  for (const t of tensors) {
    data.set(t.data as never, offset);
    offset += t.data.length;
  }
  return { data, dims: [tensors.reduce((a, t) => a + t.dims[0]!, 0), ...first.dims.slice(1)] };
}

/** Item i's rows of a batched output (a copy, so each answer owns its buffer). */
function rows(t: TensorMsg<Float32Array>, start: number, count: number, batch: number): TensorMsg<Float32Array> {
  const per = t.data.length / batch;
  return { data: t.data.slice(start * per, (start + count) * per), dims: [count, ...t.dims.slice(1)] };
}

/**
 * Dynamic batching for a model with a free batch dimension: concurrent single-image requests are
 * merged along dimension 0 into one session.run and the outputs split back. A batch leaves when it
 * is full, when maxWaitMs has passed, or as soon as a worker frees up; while every worker is busy
 * the next batch gathers. With one request at a time nothing waits (maxWaitMs 0) and batches are 1.
 */
export class DynamicBatcher {
  private pending: Item[] = [];
  private inFlight = 0;
  private timer?: unknown;
  private readonly clock: BatchTimer;

  constructor(
    private readonly runBatch: BatchRunner,
    private readonly options: BatcherOptions,
  ) {
    this.clock = options.timer ?? defaultTimer;
  }

  /** Runs one item (batch dimension 1, or any n; items are stacked along dimension 0). */
  run(feeds: Feeds, outputs?: string[], signal?: AbortSignal): Promise<Outputs> {
    signal?.throwIfAborted();
    // Items waiting for a batch are queued items (maxPending of them), but a lone item with a worker
    // free is not waiting for anyone: maxPending 0 (CVSERVE_ONNX_MAX_QUEUE=0) still serves.
    const startsNow = this.pending.length === 0 && this.inFlight < this.options.concurrency;
    if (this.options.maxPending !== undefined && !startsNow && this.pending.length >= this.options.maxPending) {
      return Promise.reject(this.options.rejectFull?.() ?? new Error('batch queue full'));
    }
    return new Promise<Outputs>((resolve, reject) => {
      const item: Item = { feeds, outputs, key: batchKey(feeds, outputs), signal, resolve, reject };
      if (signal) {
        // Dropped while it waits; once sent, its rows are simply not delivered.
        item.onAbort = () => {
          const i = this.pending.indexOf(item);
          if (i >= 0) this.pending.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', item.onAbort, { once: true });
      }
      this.pending.push(item);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.pending.length === 0 || this.inFlight >= this.options.concurrency) return;
    const ready = this.pending.length >= this.options.maxBatch || this.options.maxWaitMs <= 0;
    if (ready) {
      this.flush();
      return;
    }
    this.timer ??= this.clock.set(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.maxWaitMs);
  }

  private flush(): void {
    if (this.timer !== undefined) {
      this.clock.clear(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0 || this.inFlight >= this.options.concurrency) return;
    const key = this.pending[0]!.key;
    const batch: Item[] = [];
    let size = 0;
    this.pending = this.pending.filter((item) => {
      const n = Object.values(item.feeds)[0]?.dims[0] ?? 1;
      if (item.key !== key || (batch.length > 0 && size + n > this.options.maxBatch)) return true;
      batch.push(item);
      size += n;
      return false;
    });
    for (const item of batch) if (item.onAbort) item.signal!.removeEventListener('abort', item.onAbort);
    this.inFlight++;
    void this.send(batch, size, () => {
      // The lane is free before anyone hears back, so a caller answered now may send again at once.
      this.inFlight--;
      queueMicrotask(() => this.schedule());
    });
    // More waiting and another worker free: keep going.
    this.schedule();
  }

  private async send(batch: Item[], size: number, laneFree: () => void): Promise<void> {
    const names = Object.keys(batch[0]!.feeds);
    const feeds: Feeds = batch.length === 1 ? batch[0]!.feeds : Object.fromEntries(names.map((name) => [name, concat(batch.map((i) => i.feeds[name]!))]));
    let outputs: Outputs;
    try {
      // A merged batch runs to the end for whoever still waits; a lone item can be dropped from the queue.
      outputs = await this.runBatch(feeds, batch[0]!.outputs, batch.length === 1 ? batch[0]!.signal : undefined);
    } catch (err) {
      laneFree();
      for (const item of batch) item.reject(err);
      return;
    }
    laneFree();
    if (batch.length === 1) {
      batch[0]!.resolve(outputs);
      return;
    }
    let start = 0;
    for (const item of batch) {
      const n = Object.values(item.feeds)[0]?.dims[0] ?? 1;
      const mine: Outputs = {};
      for (const [name, t] of Object.entries(outputs)) mine[name] = rows(t, start, n, size);
      start += n;
      if (item.signal?.aborted) item.reject(item.signal.reason);
      else item.resolve(mine);
    }
  }
}
