import { AppError } from '../../errors.js';
import type { InputPacking } from '../../image/pack.js';
import { siblingModule, WorkerPool, type PoolStats } from '../pool.js';
import { DynamicBatcher } from './batcher.js';
import { RunningCells } from './running-cells.js';
import type { TextDetectTask, TextRecognizeTask, TextWorkerConfig } from './text/protocol.js';
import type { FreeDims } from './free-dims.js';
import { tensorBuffers, type Feeds, type LoadResult, type OnnxWorkerData, type Outputs, type RowFilter, type RunResult, type WarmupInput } from './protocol.js';

export type { Feeds, Outputs, TensorMsg } from './protocol.js';

export interface OnnxEngineOptions {
  /** Worker threads per model; each holds one session of that model. */
  workers: number;
  /** Intra-op threads per session. */
  threads: number;
  /**
   * Intra-op threads of a run that starts while another worker of the same model runs (each worker
   * then holds a second session with this many); unset or ≥ threads: one session per worker.
   */
  busyThreads?: number;
  /** Tasks allowed to wait per model before QUEUE_FULL. */
  maxQueue: number;
  /**
   * Runs a busy worker of a model with several workers holds besides the one it runs
   * (CVSERVE_ONNX_PREFETCH), so it starts the next without waiting for the main thread. A held run's
   * tensors move to its worker (no copy): it stays there.
   */
  prefetch?: number;
  modelsDir: string;
  /** Dynamic batching for models with a free batch dimension: most items per session.run (1: off). */
  batchMax?: number;
  /** How long a batch may wait for more items while a worker is free (ms). */
  batchWaitMs?: number;
  /** ONNX Runtime's CPU memory arena (default on); off frees each run's buffers (CVSERVE_ONNX_MEMORY_ARENA). */
  memoryArena?: boolean;
}

export interface OnnxModelSpec {
  /** Model id; the model's pool is named `onnx:<id>` in stats and errors. */
  id: string;
  /** Path of the (already verified) model file. */
  path: string;
  /** Inputs of the one warm-up run each session does after it is created. */
  warmup: Record<string, WarmupInput>;
  /** The model's batch dimension is free: concurrent runs may be merged into one (see batchMax). */
  batchable?: boolean;
  /** Intra-op threads for this model's sessions instead of the engine's (text models: 1). */
  threads?: number;
  /** Worker threads for this model instead of the engine's. */
  workers?: number;
  /** A text model: its workers also pack inputs and decode outputs (see `task`). */
  text?: TextWorkerConfig;
  /** Input dims to free in the graph as it is loaded (a detector that also runs at other sizes). */
  freeDims?: FreeDims;
  /** Feed the graph at this tensor, with these dims, instead of its input (free-dims.ts `feedFrom`), after freeing dims. */
  feedFrom?: { tensor: string; dims: Array<number | string> };
  /** More warm-up runs, one per other input size: ONNX Runtime plans each new shape on its first run. */
  extraWarmups?: Record<string, WarmupInput>[];
  /**
   * Float inputs a run may send as 8-bit RGB, packed by the worker: a quarter of the bytes to move and
   * to batch, and no float tensor on the main thread (where its memory drives garbage collection).
   */
  packs?: Record<string, InputPacking>;
}

export interface OnnxRunOptions {
  signal?: AbortSignal;
  /** Output names to compute (default: all). */
  outputs?: string[];
  /** Answer only these rows of an output (the run is then not merged into a batch: the filter is this request's). */
  keepRows?: RowFilter;
}

interface LoadedModel {
  pool: WorkerPool;
  /** Which of its workers are running it (with two workers or more). */
  running?: Int32Array;
  batcher?: DynamicBatcher;
  ready: Promise<void>;
  loadMs: number[];
  /** Intra-op threads of its lone session. */
  threads: number;
  runs: { 'all-threads': number; 'busy-threads': number };
}

/**
 * ONNX Runtime (CPU) behind worker threads, with one WorkerPool per model: each model gets
 * `workers` threads holding one session of it, its own bounded queue, and its own stats. A slow
 * model (super-resolution on a large image) then never queues a fast one (a classification)
 * behind it. Size `workers × threads` to the cores; all models together may use
 * models × workers × threads threads at peak.
 *
 * `run` is batch-agnostic: feeds carry whatever batch size the model accepts, so a dynamic
 * batcher can sit in front of it and merge requests into one call.
 */
export class OnnxEngine {
  private readonly models = new Map<string, LoadedModel>();
  private closed = false;

  constructor(readonly options: OnnxEngineOptions) {}

  /**
   * Creates the model's pool and, in every worker, its session warmed up with one run. Idempotent
   * per id. Rejects (and forgets the model) when the session cannot be created.
   */
  async load(spec: OnnxModelSpec): Promise<void> {
    if (this.closed) throw new AppError('SHUTTING_DOWN', { detail: 'ONNX engine is closed' });
    const existing = this.models.get(spec.id);
    if (existing) return existing.ready;
    const threads = spec.threads ?? this.options.threads;
    const busyThreads = this.options.busyThreads !== undefined && this.options.busyThreads < threads ? this.options.busyThreads : undefined;
    const shared: OnnxWorkerData = {
      modelId: spec.id,
      modelPath: spec.path,
      intraOpNumThreads: threads,
      memoryArena: this.options.memoryArena ?? true,
      warmup: spec.warmup,
      text: spec.text,
      freeDims: spec.freeDims,
      feedFrom: spec.feedFrom,
      extraWarmups: spec.extraWarmups,
      packs: spec.packs,
    };
    const workers = spec.workers ?? this.options.workers;
    const cells = workers > 1 ? RunningCells.buffer(workers) : undefined;
    const workerData = (slot: number): OnnxWorkerData => (cells ? { ...shared, busyThreads, running: { cells, slot } } : shared);
    const pool = new WorkerPool({
      name: `onnx:${spec.id}`,
      filename: siblingModule(import.meta.url, 'worker'),
      size: workers,
      maxQueue: this.options.maxQueue,
      workerData,
      // A lone worker's runs take every thread: the main thread's hand-over leaves no core idle, and a held run would only compete with it.
      prefetch: workers > 1 ? this.options.prefetch : 0,
      heldBuffers: 'transfer',
    });
    const model: LoadedModel = { pool, running: cells && RunningCells.slots(cells), ready: Promise.resolve(), loadMs: [], threads, runs: { 'all-threads': 0, 'busy-threads': 0 } };
    const batchMax = this.options.batchMax ?? 1;
    if (spec.batchable && batchMax > 1) {
      model.batcher = new DynamicBatcher(
        async (feeds, outputs, signal) => (await runOn(model, feeds, outputs, signal)).outputs,
        {
          maxBatch: batchMax,
          maxWaitMs: this.options.batchWaitMs ?? 0,
          concurrency: pool.size,
          // The same bound as the pool's queue: requests waiting for a batch are queued requests.
          maxPending: this.options.maxQueue,
          rejectFull: () => new AppError('QUEUE_FULL', { detail: `onnx:${spec.id} batch queue full (${this.options.maxQueue} waiting)`, headers: { 'Retry-After': '1' } }),
        },
      );
    }
    // Each worker creates and warms up its session as it starts (the worker module's `ready`);
    // then one load task per worker, all at once, collects the per-worker times.
    model.ready = pool
      .ready()
      .then(() => Promise.all(Array.from({ length: pool.size }, () => pool.run<LoadResult>({ op: 'load' }))))
      .then(
      (results) => {
        model.loadMs = results.map((r) => r.loadMs);
      },
      async (err: unknown) => {
        this.models.delete(spec.id);
        await pool.close();
        throw err;
      },
    );
    this.models.set(spec.id, model);
    return model.ready;
  }

  has(id: string): boolean {
    return this.models.has(id);
  }

  /** Per-worker session creation + warm-up times of a loaded model (ms). */
  loadTimes(id: string): number[] {
    return this.models.get(id)?.loadMs ?? [];
  }

  /**
   * The cells through which a model's workers see each other's runs (running-cells.ts): 1 while
   * that worker runs. Undefined with one worker. A test marks a worker busy here.
   */
  runningCellsOf(id: string): Int32Array | undefined {
    return this.models.get(id)?.running;
  }

  /** A loaded model's worker threads: how many of its calls can run at once (0: not loaded). */
  workersOf(id: string): number {
    return this.models.get(id)?.pool.size ?? 0;
  }

  /**
   * Runs the model on a worker. The feed buffers are transferred to the worker: the caller must
   * not use them afterwards. Output buffers come back without a copy.
   */
  async run(id: string, feeds: Feeds, options: OnnxRunOptions = {}): Promise<Outputs> {
    return (await this.runTimed(id, feeds, options)).outputs;
  }

  /** `run`, also reporting the time spent in session.run (NaN when the run was merged into a batch). */
  async runTimed(id: string, feeds: Feeds, options: OnnxRunOptions = {}): Promise<RunResult> {
    const model = this.models.get(id);
    if (!model) throw new AppError('MODEL_UNAVAILABLE', { detail: `ONNX model ${id} is not loaded` });
    await model.ready;
    if (model.batcher && !options.keepRows) return { outputs: await model.batcher.run(feeds, options.outputs, options.signal), runMs: Number.NaN, threads: Number.NaN };
    return runOn(model, feeds, options.outputs, options.signal, options.keepRows);
  }

  /**
   * A task of a text model's worker (detection with DB decoding, or recognition of every box with
   * CTC decoding): the pixel buffers in `transferList` move to the worker.
   */
  async task<T>(id: string, task: TextDetectTask | TextRecognizeTask, options: { signal?: AbortSignal; transferList?: ArrayBuffer[] } = {}): Promise<T> {
    const model = this.models.get(id);
    if (!model) throw new AppError('MODEL_UNAVAILABLE', { detail: `ONNX model ${id} is not loaded` });
    await model.ready;
    return model.pool.run<T>(task, options);
  }

  stats(): PoolStats[] {
    return [...this.models.values()].map((m) => ({ ...m.pool.stats(), runs: { ...m.runs } }));
  }

  /** Closes one model's pool (e.g. before loading a replacement file). */
  async unload(id: string): Promise<void> {
    const model = this.models.get(id);
    if (!model) return;
    this.models.delete(id);
    await model.ready.catch(() => {});
    await model.pool.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    const ids = [...this.models.keys()];
    await Promise.all(ids.map((id) => this.unload(id)));
  }
}

/** One run on a model's worker (the feed buffers move there), counted by the session that ran it. */
async function runOn(model: LoadedModel, feeds: Feeds, outputs: string[] | undefined, signal: AbortSignal | undefined, keepRows?: RowFilter): Promise<RunResult> {
  const result = await model.pool.run<RunResult>({ op: 'run', feeds, outputs, keepRows }, { signal, transferList: tensorBuffers(feeds) });
  model.runs[result.threads < model.threads ? 'busy-threads' : 'all-threads']++;
  return result;
}
