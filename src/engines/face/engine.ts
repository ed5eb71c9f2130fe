import { AppError } from '../../errors.js';
import type { RawImage } from '../../image/types.js';
import { siblingModule, WorkerPool, type PoolStats } from '../pool.js';
import { faceModelInfo, type FaceModelInfo } from './paths.js';
import type { FaceDescription, FaceDetection, FaceLoadResult, FaceOptions, FaceResult, FaceTask, FaceWorkerData } from './protocol.js';

export type { FaceBox, FaceDescription, FaceDetection, FaceOptions, FaceResult, FaceTimings } from './protocol.js';
export type { FaceModelInfo } from './paths.js';

/**
 * Default SSD score threshold. Measured: the 17 faces of test_face_processing.jpg score 0.74-0.997
 * (0.43 at worst in flipped copies rescaled 0.8-2x); the highest non-face scores are 0.22 (car.jpg),
 * 0.13 (cat_small.jpg) and 0.06 (the group photo). 0.4 keeps every face with room on both sides.
 */
export const DEFAULT_FACE_MIN_CONFIDENCE = 0.4;

export interface FaceEngineOptions {
  /** Worker threads; each holds the three nets (~170 MB) and a wasm heap that grows with the images (~0.5 GB). */
  workers: number;
  /** Tasks allowed to wait for a worker; beyond → QUEUE_FULL (503 + Retry-After). */
  maxQueue: number;
  /** A worker whose wasm heap passes this is replaced between tasks (0 or unset: never). */
  maxHeapBytes?: number;
  /** Start the workers (and load the models) now instead of on the first task. */
  preload?: boolean;
  /** Images are shrunk inside the worker so their longer side is at most this (default 1920). */
  maxSide?: number;
  /** Most faces one task reports (default 50); a task may ask for fewer. */
  maxFaces?: number;
}

/**
 * Face detection and description (face-api on tfjs wasm) behind a pool of worker threads that is
 * created on the first task, or at once with `preload`. Nothing here runs a model on the calling
 * thread. Boxes are [x1, y1, x2, y2] in the pixels of the image passed; faces come largest first.
 */
export class FaceEngine {
  /** Name and version stored with every descriptor (weights hash included). */
  readonly model: FaceModelInfo;
  private pool?: WorkerPool;
  private loadResults?: Promise<FaceLoadResult[]>;
  private closed = false;

  constructor(readonly options: FaceEngineOptions) {
    this.model = faceModelInfo();
    if (options.preload) void this.ready().catch(() => {}); // a failure shows in stats() and on each task
  }

  /** Whether the worker pool exists (first task sent, or preloaded). */
  get started(): boolean {
    return this.pool !== undefined;
  }

  /** Starts the workers if needed and resolves once every one has loaded the models. */
  async ready(): Promise<void> {
    await this.startedPool().ready();
  }

  /** Model load time per worker (ms), starting the workers if needed. */
  async loadTimes(): Promise<FaceLoadResult[]> {
    const pool = this.startedPool();
    this.loadResults ??= pool.ready().then(() => Promise.all(Array.from({ length: pool.size }, () => pool.run<FaceLoadResult>({ op: 'load' }))));
    return this.loadResults;
  }

  /** SSD face detection: boxes and scores, largest first. The caller's image stays usable. */
  async detect(image: RawImage, options: FaceOptions = {}, signal?: AbortSignal): Promise<FaceDetection[]> {
    return (await this.run<FaceDetection>('detect', image, options, signal)).faces;
  }

  /** Detection, landmarks and a 128-d descriptor for every face kept, largest first. */
  async describe(image: RawImage, options: FaceOptions = {}, signal?: AbortSignal): Promise<FaceDescription[]> {
    return (await this.run<FaceDescription>('describe', image, options, signal)).faces;
  }

  /** `detect` / `describe` with the worker's timings and its live tensor count (for tests and benchmarks). */
  async run<F extends FaceDetection>(op: FaceTask['op'], image: RawImage, options: FaceOptions = {}, signal?: AbortSignal): Promise<FaceResult<F>> {
    const limit = this.options.maxFaces ?? 50;
    const maxFaces = Math.max(1, Math.min(limit, Math.floor(options.maxFaces ?? limit)));
    const minConfidence = options.minConfidence ?? DEFAULT_FACE_MIN_CONFIDENCE;
    // Callers validate their parameters (each transport in its own words); out of range here is a bug.
    if (!(minConfidence >= 0 && minConfidence <= 1)) throw new RangeError(`face engine: minConfidence ${minConfidence} is outside 0..1`);
    const pool = this.startedPool();
    try {
      await pool.ready();
    } catch (err) {
      throw new AppError('MODEL_UNAVAILABLE', { detail: (err as Error).message, cause: err });
    }
    const data = new Uint8Array(image.data.length);
    data.set(image.data);
    const task: FaceTask = { op, image: { ...image, data }, minConfidence, maxFaces, ...(options.largestOnly && { largestOnly: true }) };
    return pool.run<FaceResult<F>>(task, { signal, transferList: [data.buffer] });
  }

  /** The pool's figures; empty until the workers were started. */
  stats(): PoolStats[] {
    return this.pool ? [this.pool.stats()] : [];
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
  }

  private startedPool(): WorkerPool {
    if (this.closed) throw new AppError('SHUTTING_DOWN', { detail: 'face engine is closed' });
    this.pool ??= new WorkerPool({
      name: 'face',
      filename: siblingModule(import.meta.url, 'worker'),
      size: this.options.workers,
      maxQueue: this.options.maxQueue,
      workerData: { maxSide: this.options.maxSide ?? 1920 } satisfies FaceWorkerData,
      maxHeapBytes: this.options.maxHeapBytes,
    });
    return this.pool;
  }
}
