import type { RawImage } from '../../image/types.js';
import { siblingModule, WorkerPool, type PoolStats } from '../pool.js';
import type { Box, CannyResult, DetectOptions, DetectResult } from './protocol.js';

export type { Box, DetectOptions } from './protocol.js';

export interface OpenCvEngineOptions {
  workers: number;
  maxQueue: number;
  modelsDir: string;
  /** A worker whose wasm heap passes this is replaced between tasks (0 or unset: never). */
  maxHeapBytes?: number;
}

/** OpenCV (wasm) behind a pool of worker threads. Nothing here runs OpenCV on the calling thread. */
export class OpenCvEngine {
  private readonly pool: WorkerPool;

  constructor(readonly options: OpenCvEngineOptions) {
    this.pool = new WorkerPool({
      name: 'opencv',
      filename: siblingModule(import.meta.url, 'worker'),
      size: options.workers,
      maxQueue: options.maxQueue,
      workerData: { modelsDir: options.modelsDir },
      maxHeapBytes: options.maxHeapBytes,
    });
  }

  async canny(image: RawImage, threshold1: number, threshold2: number, signal?: AbortSignal): Promise<RawImage> {
    const result = await this.pool.run<CannyResult>({ op: 'canny', image, threshold1, threshold2 }, { signal });
    return result.image;
  }

  /**
   * Haar cascade detection. Boxes are [x1, y1, x2, y2] in the pixels of `image`. The pixels are
   * copied to the worker, so `image` stays usable (e.g. a cached decode drawn on afterwards).
   */
  async detect(image: RawImage, options: DetectOptions, signal?: AbortSignal): Promise<Box[]> {
    const result = await this.detectTimed(image, options, signal);
    return result.boxes;
  }

  /** detect() plus the time spent in detectMultiScale inside the worker. */
  detectTimed(image: RawImage, options: DetectOptions, signal?: AbortSignal): Promise<DetectResult> {
    const { cascade, scaleFactor, minNeighbors, minSize } = options;
    return this.pool.run<DetectResult>({ op: 'detect', image, cascade, scaleFactor, minNeighbors, minSize }, { signal });
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
