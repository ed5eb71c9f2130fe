import diagnostics from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, type Transferable } from 'node:worker_threads';
import { AppError, ERRORS, type ErrorCode } from '../errors.js';
import type { InitMessage, TaskMessage, WorkerError, WorkerReply } from './pool-worker.js';
import { revokeTask } from './task-claims.js';

export interface WorkerPoolOptions {
  /** Name used in errors, logs and metrics (e.g. "opencv", "onnx"). */
  name: string;
  /** Task module (a file URL): its default export runs one task; see pool-worker.ts for the rest. */
  filename: URL;
  size: number;
  /** Tasks allowed to wait for a free worker; beyond that `run` rejects with QUEUE_FULL (503). */
  maxQueue: number;
  /** What each worker gets as `workerData`; a function gets the worker's slot (0 … size − 1), the same for its replacements. */
  workerData?: unknown | ((slot: number) => unknown);
  /** Per-worker V8 heap cap (MB); wasm memory is outside it. */
  maxOldGenerationSizeMb?: number;
  /** Retire a worker between tasks once its module's heapBytes() passes this; 0 or unset: never. */
  maxHeapBytes?: number;
  /**
   * Tasks a busy worker may hold besides the one it runs (0 or unset: none), so it starts the next
   * one without waiting for the main thread to hand it over.
   */
  prefetch?: number;
  /**
   * How a held task's transfer list reaches its worker. `copy` (the default): its buffers are copied
   * and the originals kept, so until it starts the task can still move: to a worker that falls idle,
   * or back to the queue when its worker is replaced. `transfer`: they move, as a running task's do,
   * so nothing is copied, nor left for either thread's collector; the task then stays with its
   * worker, and fails with ENGINE_FAILED if that worker is replaced before it starts.
   */
  heldBuffers?: 'copy' | 'transfer';
}

export interface RunOptions {
  /** Aborting drops a queued task; a running task is not waited for (its result is discarded). */
  signal?: AbortSignal;
  transferList?: Transferable[];
}

export interface PoolStats {
  name: string;
  /** Distinguishes pools with the same name (several apps in one process). */
  id: number;
  size: number;
  /** Tasks on a worker (running, or held for it by prefetch), including ones whose caller already gave up. */
  running: number;
  /** Tasks waiting for a worker. */
  queued: number;
  /** Tasks refused because the queue was full. */
  rejected: number;
  /** Queued tasks dropped because their caller gave up (client gone, deadline passed). */
  dropped: number;
  completed: number;
  failed: number;
  /** Workers started and able to take tasks. */
  workers: number;
  /** Every worker has started once, one at least is serving, and the pool is not closed. */
  up: boolean;
  /** Why the last worker failed to start, if it did. */
  startupError?: string;
  /** Workers replaced after passing the heap cap or a wasm trap. */
  retired: number;
  /** Workers that died (exit, uncaught error, out of memory) and were replaced. */
  crashed: number;
  /** Sum of the heap sizes the live workers last reported (e.g. OpenCV's wasm heap). */
  heapBytes: number;
  /** Largest heap a live worker last reported. */
  maxWorkerHeapBytes: number;
  /** Total time workers spent on tasks; rate(busySeconds) / size is the utilisation. */
  busySeconds: number;
  /** ONNX pools: model runs by the session that ran them (all threads alone, fewer while another worker ran). */
  runs?: { 'all-threads': number; 'busy-threads': number };
}

/** Published on `TASK_CHANNEL` after every task a worker finished. */
export interface TaskEvent {
  poolId: number;
  pool: string;
  /** The task's `op` (or `model`) field when it has a short name, else "task". */
  op: string;
  seconds: number;
  ok: boolean;
}

export const TASK_CHANNEL = 'cvserve:pool-task';
const taskChannel = diagnostics.channel(TASK_CHANNEL);

/** Published on `WORKER_CHANNEL` when a worker is replaced or cannot start, for the log. */
export interface WorkerEvent {
  poolId: number;
  pool: string;
  event: 'retired' | 'crashed' | 'startup-failed';
  reason: string;
}

export const WORKER_CHANNEL = 'cvserve:pool-worker';
const workerChannel = diagnostics.channel(WORKER_CHANNEL);

interface Job {
  /** The id of its latest hand-over to a worker. */
  id: number;
  task: unknown;
  transferList?: Transferable[];
  op: string;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  settled: boolean;
  started: number;
  cleanup: () => void;
}

/** A task handed to a worker: the job, or a stand-in for one moved elsewhere whose `skipped` reply is still due. */
interface Handed {
  id: number;
  claim: number;
  job?: Job;
  /** Its buffers moved to the worker: it can run there only. */
  transferred: boolean;
}

interface Slot {
  worker?: Worker;
  state: 'starting' | 'idle' | 'busy' | 'waiting-restart';
  /** What the worker was handed, in order: the first runs (or is about to), the rest wait. */
  handed: Handed[];
  /** Claim cells shared with the worker; a task uses cell `seq % CLAIM_CELLS`. */
  claims: Int32Array;
  seq: number;
  heapBytes: number;
  /** Startup failures in a row, for the restart backoff. */
  startupFailures: number;
  restartTimer?: NodeJS.Timeout;
}

const BOOTSTRAP = siblingModule(import.meta.url, 'pool-worker');
/**
 * Worker threads start from this script: compiled, it imports the bootstrap module. In development
 * (tsx on Node 20) module hooks do not reach worker threads, so the script installs tsx's require
 * hook and requires the .ts files.
 */
const BOOTSTRAP_SCRIPT = BOOTSTRAP.pathname.endsWith('.ts')
  ? `require(${JSON.stringify(createRequire(import.meta.url).resolve('tsx/cjs'))}); require(${JSON.stringify(fileURLToPath(BOOTSTRAP))});`
  : `import(${JSON.stringify(BOOTSTRAP.href)});`;
const MAX_RESTART_DELAY_MS = 30_000;
const OP_NAME = /^[A-Za-z][\w.-]{0,47}$/;
/** More cells than tasks a worker can hold at once (1 + prefetch, with stand-ins). */
const CLAIM_CELLS = 64;
const MAX_PREFETCH = 8;
let nextPoolId = 1;

/**
 * A fixed-size pool of worker threads with its own bounded queue. The pool owns the threads so it
 * can retire a worker between tasks without ever handing a task to a worker that is leaving: a
 * worker whose wasm heap passed the cap, or whose module trapped, is terminated right after its
 * answer and its slot restarts with a fresh thread. A worker that dies fails only the task it was
 * running (503 ENGINE_FAILED with Retry-After) and is replaced. Queued work is dropped when its
 * caller aborts; running work is not waited for (terminating it would cost a reload of OpenCV or a
 * model).
 *
 * Why not piscina: its options and events have no way to retire one worker after a task on a
 * value the worker reports (its `resourceLimits` cap V8's heap, not wasm memory, and a worker
 * that exits on its own may already hold the next task), and it is not faster: one round trip
 * cost 0.031 ms CPU here against piscina 5's 0.033 for a tiny task, and 0.80 against 0.96 ms for
 * a task moving a 4.5 MB image (bench/pool-dispatch.ts, alternating rounds in one run). So this
 * pool stays, and piscina is only a devDependency of that benchmark.
 */
export class WorkerPool {
  readonly name: string;
  readonly id = nextPoolId++;
  readonly size: number;
  readonly maxQueue: number;
  private readonly slots: Slot[];
  private readonly pending: Job[] = [];
  private nextTaskId = 1;
  private closed = false;
  private everyWorkerStarted = false;
  private startupError?: string;
  private readonly counts = { rejected: 0, dropped: 0, completed: 0, failed: 0, retired: 0, crashed: 0, busySeconds: 0 };
  private readonly readyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  /** Set by close() while it waits for running tasks. */
  private whenIdle?: () => void;

  constructor(private readonly options: WorkerPoolOptions) {
    this.name = options.name;
    this.size = options.size;
    this.maxQueue = options.maxQueue;
    const prefetch = options.prefetch ?? 0;
    if (!Number.isInteger(prefetch) || prefetch < 0 || prefetch > MAX_PREFETCH) {
      throw new Error(`prefetch must be an integer from 0 to ${MAX_PREFETCH}`);
    }
    this.slots = Array.from({ length: options.size }, () => ({
      state: 'starting' as const,
      handed: [],
      claims: new Int32Array(new SharedArrayBuffer(CLAIM_CELLS * Int32Array.BYTES_PER_ELEMENT)),
      seq: 0,
      heapBytes: 0,
      startupFailures: 0,
    }));
    for (const slot of this.slots) this.start(slot);
  }

  stats(): PoolStats {
    const live = this.slots.filter((s) => s.state === 'idle' || s.state === 'busy');
    const heaps = live.map((s) => s.heapBytes);
    return {
      name: this.name,
      id: this.id,
      size: this.size,
      running: this.onWorkers(),
      queued: this.pending.length,
      rejected: this.counts.rejected,
      dropped: this.counts.dropped,
      completed: this.counts.completed,
      failed: this.counts.failed,
      workers: live.length,
      up: !this.closed && this.everyWorkerStarted && live.length > 0,
      ...(this.startupError !== undefined && { startupError: this.startupError }),
      retired: this.counts.retired,
      crashed: this.counts.crashed,
      heapBytes: heaps.reduce((a, b) => a + b, 0),
      maxWorkerHeapBytes: Math.max(0, ...heaps),
      busySeconds: this.counts.busySeconds,
    };
  }

  /** Resolves once every worker has started; rejects if one fails to start first. */
  ready(): Promise<void> {
    if (this.everyWorkerStarted) return Promise.resolve();
    if (this.startupError !== undefined) return Promise.reject(new Error(`${this.name} worker failed to start: ${this.startupError}`));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Runs one task on a worker. Rejects with QUEUE_FULL when the queue is full. */
  run<T>(task: unknown, options: RunOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new AppError('SHUTTING_DOWN', { detail: `${this.name} pool is closed` }));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.onWorkers() + this.pending.length >= this.size + this.maxQueue) {
      this.counts.rejected++;
      return Promise.reject(
        new AppError('QUEUE_FULL', { detail: `${this.name} queue full (${this.maxQueue} waiting)`, headers: { 'Retry-After': '1' } }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        id: 0,
        task,
        transferList: options.transferList,
        op: opName(task),
        resolve: resolve as (value: unknown) => void,
        reject,
        settled: false,
        started: 0,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      const onAbort = () => {
        const queuedAt = this.pending.indexOf(job);
        if (queuedAt >= 0) {
          this.pending.splice(queuedAt, 1);
          this.counts.dropped++;
        } else if (this.takeBack(job)) this.counts.dropped++;
        settle(job, () => reject(signal!.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.push(job);
      this.dispatch();
    });
  }

  /**
   * Refuses new tasks and fails queued ones, lets running tasks finish for up to `graceMs` (a
   * worker stopped inside native code, an ONNX Runtime run, risks the process), then stops the
   * workers, failing what still runs.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const shuttingDown = () => new AppError('SHUTTING_DOWN', { detail: `${this.name} pool closed` });
    for (const job of this.pending.splice(0)) settle(job, () => job.reject(shuttingDown()));
    // Held tasks not started yet are queued work too.
    for (const slot of this.slots) {
      for (const h of slot.handed) {
        const job = h.job;
        if (job && revokeTask(slot.claims, h.claim, h.id)) {
          h.job = undefined;
          settle(job, () => job.reject(shuttingDown()));
        }
      }
    }
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(`${this.name} pool closed`));
    await this.runningDone(graceMs);
    await Promise.all(
      this.slots.map(async (slot) => {
        clearTimeout(slot.restartTimer);
        for (const { job } of slot.handed.splice(0)) if (job) settle(job, () => job.reject(shuttingDown()));
        const worker = slot.worker;
        slot.worker = undefined;
        slot.state = 'waiting-restart';
        if (worker) await worker.terminate().catch(() => {});
      }),
    );
  }

  /** Resolves when no task runs, or after `timeoutMs`. */
  private runningDone(timeoutMs: number): Promise<void> {
    if (!this.slots.some((s) => s.state === 'busy') || timeoutMs <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.whenIdle = done;
    }).finally(() => {
      this.whenIdle = undefined;
    });
  }

  private notifyIfIdle(): void {
    if (this.whenIdle && !this.slots.some((s) => s.state === 'busy')) this.whenIdle();
  }

  private start(slot: Slot): void {
    if (this.closed) {
      slot.state = 'waiting-restart';
      return;
    }
    const worker = new Worker(BOOTSTRAP_SCRIPT, {
      eval: true,
      workerData: typeof this.options.workerData === 'function' ? this.options.workerData(this.slots.indexOf(slot)) : this.options.workerData,
      resourceLimits: this.options.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: this.options.maxOldGenerationSizeMb } : undefined,
    });
    slot.worker = worker;
    slot.state = 'starting';
    slot.heapBytes = 0;
    slot.handed = [];
    // A fresh worker starts from clean cells: a stale id must never be claimable.
    slot.claims.fill(0);
    let lastError: Error | undefined;
    worker.on('message', (reply: WorkerReply) => {
      if (slot.worker === worker) this.onReply(slot, reply);
    });
    worker.on('error', (err) => {
      lastError = err;
    });
    worker.on('exit', (code) => {
      if (slot.worker !== worker) return; // retired on purpose, or stopped by close()
      this.onWorkerDied(slot, lastError?.message ?? `worker exited with code ${code}`);
    });
    worker.postMessage({ type: 'init', module: this.options.filename.href, maxHeapBytes: this.options.maxHeapBytes ?? 0, claims: slot.claims.buffer as SharedArrayBuffer } satisfies InitMessage);
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    switch (reply.type) {
      case 'ready':
        slot.state = 'idle';
        slot.heapBytes = reply.heapBytes;
        slot.startupFailures = 0;
        slot.worker!.unref();
        if (!this.everyWorkerStarted && this.slots.every((s) => s.state === 'idle' || s.state === 'busy')) {
          this.everyWorkerStarted = true;
          this.startupError = undefined;
          for (const w of this.readyWaiters.splice(0)) w.resolve();
        }
        this.dispatch();
        return;
      case 'startup-failed':
        this.onStartupFailed(slot, `${reply.error.name}: ${reply.error.message}`);
        return;
      case 'skipped': {
        const at = slot.handed.findIndex((h) => h.id === reply.id);
        if (at >= 0) slot.handed.splice(at, 1);
        slot.heapBytes = reply.heapBytes;
        this.afterReply(slot);
        return;
      }
      case 'result':
      case 'error': {
        const at = slot.handed.findIndex((h) => h.id === reply.id);
        const job = at >= 0 ? slot.handed.splice(at, 1)[0]!.job : undefined;
        if (!job) return;
        slot.heapBytes = reply.heapBytes;
        const seconds = (performance.now() - job.started) / 1000;
        this.counts.busySeconds += seconds;
        if (reply.type === 'result') {
          this.counts.completed++;
          settle(job, () => job.resolve(reply.value));
        } else {
          this.counts.failed++;
          settle(job, () => job.reject(this.rebuildError(reply.error)));
        }
        if (taskChannel.hasSubscribers) {
          taskChannel.publish({ poolId: this.id, pool: this.name, op: job.op, seconds, ok: reply.type === 'result' } satisfies TaskEvent);
        }
        if (reply.retire) {
          const reason = reply.type === 'error' && reply.error.name === 'RuntimeError' ? `wasm trap: ${reply.error.message}` : `heap ${reply.heapBytes} bytes`;
          for (const held of this.evacuate(slot)) {
            this.counts.failed++;
            settle(held, () => held.reject(engineFailed(`${this.name} worker retired: ${reason}`)));
          }
          this.retire(slot, reason);
          this.dispatch();
          this.notifyIfIdle();
        } else this.afterReply(slot);
        return;
      }
    }
  }

  /** The worker's next held task (if any) is now the one running; an emptied worker is idle. */
  private afterReply(slot: Slot): void {
    const next = slot.handed.find((h) => h.job !== undefined);
    if (next) next.job!.started = performance.now();
    if (slot.handed.length === 0) {
      slot.state = 'idle';
      slot.worker!.unref();
    }
    this.dispatch();
    this.notifyIfIdle();
  }

  /** Tasks on workers, running or held. */
  private onWorkers(): number {
    let n = 0;
    for (const slot of this.slots) for (const h of slot.handed) if (h.job) n++;
    return n;
  }

  /**
   * Takes a held task back from its worker before it starts (its caller gave up, or another worker
   * is free): the worker will skip it. False if it is running, or on no worker.
   */
  private takeBack(job: Job): boolean {
    for (const slot of this.slots) {
      const handed = slot.handed.find((h) => h.job === job);
      if (!handed) continue;
      if (!revokeTask(slot.claims, handed.claim, handed.id)) return false;
      handed.job = undefined; // a stand-in until the worker's `skipped` reply
      return true;
    }
    return false;
  }

  /**
   * Empties the hands of a worker being replaced: tasks it has not started go back to the front of
   * the queue; one it is running, or whose buffers it already owns, fails with ENGINE_FAILED (503).
   * Returns the failed jobs for the caller to reject with its reason.
   */
  private evacuate(slot: Slot): Job[] {
    const failed: Job[] = [];
    const requeued: Job[] = [];
    for (const h of slot.handed.splice(0)) {
      if (!h.job || h.job.settled) continue;
      if (revokeTask(slot.claims, h.claim, h.id) && !h.transferred) requeued.push(h.job);
      else failed.push(h.job);
    }
    this.pending.unshift(...requeued);
    return failed;
  }

  /**
   * Hands queued jobs to idle workers, oldest first; with prefetch, then to busy workers holding
   * fewest. A worker left idle with nothing queued takes over a task another worker holds.
   */
  private dispatch(): void {
    while (this.pending.length > 0) {
      const slot = this.slots.find((s) => s.state === 'idle') ?? this.prefetchSlot();
      if (!slot) return;
      this.handTo(slot, this.pending.shift()!);
    }
    for (const idle of this.slots.filter((s) => s.state === 'idle')) {
      const job = this.stealWaiting();
      if (!job) return;
      this.handTo(idle, job);
    }
  }

  /** The busy worker with the fewest held tasks, if it may hold one more. */
  private prefetchSlot(): Slot | undefined {
    const limit = 1 + (this.options.prefetch ?? 0);
    let best: Slot | undefined;
    for (const s of this.slots) {
      if (s.state !== 'busy' || s.handed.length >= limit) continue;
      if (!best || s.handed.length < best.handed.length) best = s;
    }
    return best;
  }

  /** A held task that has not started, taken back from its worker (the oldest hand-over first). */
  private stealWaiting(): Job | undefined {
    const candidates = this.slots
      .filter((s) => s.state === 'busy')
      .flatMap((s) => s.handed.slice(1).filter((h) => h.job && !h.job.settled))
      .sort((a, b) => a.id - b.id);
    for (const h of candidates) {
      const job = h.job!;
      if (!h.transferred && this.takeBack(job)) return job;
    }
    return undefined;
  }

  private handTo(slot: Slot, job: Job): void {
    const id = this.nextTaskId++;
    const claim = slot.seq++ % CLAIM_CELLS;
    job.id = id;
    Atomics.store(slot.claims, claim, id);
    const runsNow = slot.handed.length === 0;
    const moves = runsNow || this.options.heldBuffers === 'transfer';
    slot.handed.push({ id, claim, job, transferred: moves && (job.transferList?.length ?? 0) > 0 });
    if (runsNow) job.started = performance.now();
    slot.state = 'busy';
    slot.worker!.ref();
    try {
      slot.worker!.postMessage({ type: 'task', id, task: job.task, claim } satisfies TaskMessage, moves ? job.transferList : undefined);
    } catch (err) {
      // Not cloneable: the caller's fault, and the worker never saw it.
      Atomics.store(slot.claims, claim, 0);
      slot.handed.pop();
      if (slot.handed.length === 0) {
        slot.state = 'idle';
        slot.worker!.unref();
      }
      this.counts.failed++;
      settle(job, () => job.reject(new AppError('INTERNAL', { detail: `${this.name} task could not be sent: ${(err as Error).message}`, cause: err })));
    }
  }

  /** Replaces a worker that answered but must not take another task. */
  private retire(slot: Slot, reason: string): void {
    this.counts.retired++;
    this.publishWorkerEvent('retired', reason);
    const worker = slot.worker!;
    slot.worker = undefined;
    void worker.terminate().catch(() => {});
    this.start(slot);
  }

  private onWorkerDied(slot: Slot, reason: string): void {
    const failed = this.evacuate(slot);
    slot.worker = undefined;
    if (slot.state === 'starting') {
      this.onStartupFailed(slot, reason);
      return;
    }
    this.counts.crashed++;
    this.publishWorkerEvent('crashed', reason);
    for (const job of failed) {
      this.counts.failed++;
      settle(job, () => job.reject(engineFailed(`${this.name} worker died: ${reason}`)));
    }
    this.start(slot);
    this.dispatch();
    this.notifyIfIdle();
  }

  /** A worker that cannot start is retried with a growing delay, so a broken module does not spin. */
  private onStartupFailed(slot: Slot, reason: string): void {
    this.startupError = reason;
    this.publishWorkerEvent('startup-failed', reason);
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(`${this.name} worker failed to start: ${reason}`));
    const worker = slot.worker;
    slot.worker = undefined;
    void worker?.terminate().catch(() => {});
    slot.state = 'waiting-restart';
    const delay = Math.min(MAX_RESTART_DELAY_MS, 500 * 2 ** slot.startupFailures++);
    slot.restartTimer = setTimeout(() => this.start(slot), delay);
    slot.restartTimer.unref();
    // No worker is up or coming up: queued work would wait on a restart that may never succeed
    // (and hold nothing that keeps the process alive); it fails now, naming why.
    if (!this.slots.some((s) => s.state !== 'waiting-restart')) {
      for (const job of this.pending.splice(0)) {
        this.counts.failed++;
        settle(job, () => job.reject(engineFailed(`${this.name} worker failed to start: ${reason}`)));
      }
    }
  }

  private publishWorkerEvent(event: WorkerEvent['event'], reason: string): void {
    if (workerChannel.hasSubscribers) workerChannel.publish({ poolId: this.id, pool: this.name, event, reason } satisfies WorkerEvent);
  }

  private rebuildError(error: WorkerError): AppError {
    if (error.code && error.code in ERRORS) {
      return new AppError(error.code as ErrorCode, { publicMessage: error.publicMessage, detail: error.message });
    }
    // A wasm trap (out of bounds, out of memory): the worker is being replaced; the request may be retried.
    if (error.name === 'RuntimeError') return engineFailed(`${this.name} task trapped: ${error.message}`);
    return new AppError('INTERNAL', { detail: `${this.name} task failed: ${error.name}: ${error.message}` });
  }
}

/** A worker that died or trapped under a task: 503 with Retry-After, as the pool replaces it at once. */
function engineFailed(detail: string): AppError {
  return new AppError('ENGINE_FAILED', { detail, headers: { 'Retry-After': '1' } });
}

function settle(job: Job, action: () => void): void {
  if (job.settled) return;
  job.settled = true;
  job.cleanup();
  action();
}

function opName(task: unknown): string {
  const t = task as { op?: unknown; model?: unknown } | null;
  const name = typeof t?.op === 'string' ? t.op : typeof t?.model === 'string' ? t.model : undefined;
  return name !== undefined && OP_NAME.test(name) ? name : 'task';
}

/** The worker module's file next to the calling module, whether running from .ts (tsx) or compiled .js. */
export function siblingModule(importMetaUrl: string, basename: string): URL {
  const ext = importMetaUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${basename}${ext}`, importMetaUrl);
}
