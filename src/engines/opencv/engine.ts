import type { RawImage } from '../../image/types.js';
import { siblingModule, WorkerPool, type PoolStats } from '../pool.js';
import type { CannyResult } from './protocol.js';

export interface OpenCvEngineOptions {
  workers: number;
  maxQueue: number;
  modelsDir: string;
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
    });
  }

  async canny(image: RawImage, threshold1: number, threshold2: number, signal?: AbortSignal): Promise<RawImage> {
    const result = await this.pool.run<CannyResult>({ op: 'canny', image, threshold1, threshold2 }, { signal });
    return result.image;
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
