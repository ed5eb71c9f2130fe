import { Piscina } from 'piscina';
import { AppError } from '../errors.js';

export interface WorkerPoolOptions {
  /** Name used in errors, logs and metrics (e.g. "opencv", "onnx"). */
  name: string;
  /** Worker module (a file URL). */
  filename: URL;
  size: number;
  /** Tasks allowed to wait for a free worker; beyond that `run` rejects with QUEUE_FULL (503). */
  maxQueue: number;
  workerData?: unknown;
  /** Per-worker V8 heap cap (MB); wasm memory is outside it. */
  maxOldGenerationSizeMb?: number;
}

export interface RunOptions {
  /** Aborting drops a queued task; a running task is not waited for (its result is discarded). */
  signal?: AbortSignal;
  transferList?: Transferable[];
}

export interface PoolStats {
  name: string;
  size: number;
  running: number;
  queued: number;
  rejected: number;
  completed: number;
  failed: number;
}

interface Waiting {
  start: () => void;
  cancel: (reason: unknown) => void;
}

/**
 * A fixed-size pool of worker threads with its own bounded queue in front. The queue lives here
 * rather than in piscina so that queued work can be dropped when its client leaves while running
 * work is simply not waited for (piscina would terminate the worker, and reloading OpenCV wasm or
 * an ONNX session costs far more than finishing the task).
 */
export class WorkerPool {
  readonly name: string;
  readonly size: number;
  readonly maxQueue: number;
  private readonly piscina: Piscina;
  private running = 0;
  private readonly waiting: Waiting[] = [];
  private rejected = 0;
  private completed = 0;
  private failed = 0;
  private closed = false;

  constructor(options: WorkerPoolOptions) {
    this.name = options.name;
    this.size = options.size;
    this.maxQueue = options.maxQueue;
    this.piscina = new Piscina({
      filename: options.filename.href,
      minThreads: options.size,
      maxThreads: options.size,
      // One task per worker at a time: the queue above decides who runs next.
      concurrentTasksPerWorker: 1,
      maxQueue: options.size,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      workerData: options.workerData,
      resourceLimits: options.maxOldGenerationSizeMb ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb } : undefined,
    });
    // A worker that dies is replaced by piscina; its task's promise rejects and is handled in run().
    this.piscina.on('error', () => {});
  }

  stats(): PoolStats {
    return {
      name: this.name,
      size: this.size,
      running: this.running,
      queued: this.waiting.length,
      rejected: this.rejected,
      completed: this.completed,
      failed: this.failed,
    };
  }

  /** Runs one task on a worker. Rejects with QUEUE_FULL when the queue is full. */
  async run<T>(task: unknown, options: RunOptions = {}): Promise<T> {
    if (this.closed) throw new AppError('SHUTTING_DOWN', { detail: `${this.name} pool is closed` });
    const { signal } = options;
    signal?.throwIfAborted();
    // A waiting task is handed its slot directly by release(), so nobody can jump the queue.
    if (this.running >= this.size) await this.waitForSlot(signal);
    else this.running++;
    const work = this.piscina.run(task, { transferList: options.transferList as never }).then(
      (value) => {
        this.completed++;
        return value as T;
      },
      (err: unknown) => {
        this.failed++;
        throw err instanceof AppError
          ? err
          : new AppError('INTERNAL', { detail: `${this.name} worker failed: ${(err as Error)?.message ?? String(err)}`, cause: err });
      },
    );
    // The slot frees when the worker is done, whether or not anyone still waits for the answer.
    void work.then(this.release, this.release);
    if (!signal) return work;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private readonly release = () => {
    const next = this.waiting.shift();
    if (next) next.start();
    else this.running--;
  };

  private waitForSlot(signal?: AbortSignal): Promise<void> {
    if (this.waiting.length >= this.maxQueue) {
      this.rejected++;
      throw new AppError('QUEUE_FULL', {
        detail: `${this.name} queue full (${this.maxQueue} waiting)`,
        headers: { 'Retry-After': '1' },
      });
    }
    return new Promise<void>((resolve, reject) => {
      const entry: Waiting = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        cancel: reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.cancel(new AppError('SHUTTING_DOWN'));
    await this.piscina.destroy();
  }
}

/** The worker module's file next to the calling module, whether running from .ts (tsx) or compiled .js. */
export function siblingModule(importMetaUrl: string, basename: string): URL {
  const ext = importMetaUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${basename}${ext}`, importMetaUrl);
}
