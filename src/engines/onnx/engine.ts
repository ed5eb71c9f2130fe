import type { PoolStats } from '../pool.js';

export interface OnnxEngineOptions {
  workers: number;
  threads: number;
  maxQueue: number;
  modelsDir: string;
}

/** Placeholder until the ONNX engine lands: ONNX Runtime sessions in worker threads. */
export class OnnxEngine {
  constructor(readonly options: OnnxEngineOptions) {}

  stats(): PoolStats[] {
    return [];
  }

  async close(): Promise<void> {}
}
