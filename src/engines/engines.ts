import type { Config } from '../config.js';
import { ModelStore } from '../models/store.js';
import { OnnxEngine } from './onnx/engine.js';
import { OpenCvEngine } from './opencv/engine.js';

/** The compute engines resources drive. Created once per app; closed at shutdown. */
export interface Engines {
  opencv: OpenCvEngine;
  onnx: OnnxEngine;
  /** The models directory: sha256-verified access to manifest files, background fetch of missing ones. */
  models: ModelStore;
}

export function createEngines(config: Config): Engines {
  // The manifest first: an invalid one fails startup before any worker thread exists.
  const models = ModelStore.fromConfig(config);
  return {
    opencv: new OpenCvEngine({
      workers: config.opencvWorkers,
      maxQueue: config.opencvMaxQueue,
      modelsDir: config.modelsDir,
      maxHeapBytes: config.workerMaxHeapMb * 1024 * 1024,
      splitMinPixels: config.detectSplitMinPixels,
    }),
    onnx: new OnnxEngine({
      workers: config.onnxWorkers,
      threads: config.onnxThreads,
      maxQueue: config.onnxMaxQueue,
      modelsDir: config.modelsDir,
      batchMax: config.onnxBatchMax,
      batchWaitMs: config.onnxBatchWaitMs,
    }),
    models,
  };
}

export async function closeEngines(engines: Engines): Promise<void> {
  engines.models.close();
  await Promise.all([engines.opencv.close(), engines.onnx.close()]);
}
