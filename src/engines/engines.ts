import type { Config } from '../config.js';
import { OnnxEngine } from './onnx/engine.js';
import { OpenCvEngine } from './opencv/engine.js';

/** The compute engines resources drive. Created once per app; closed at shutdown. */
export interface Engines {
  opencv: OpenCvEngine;
  onnx: OnnxEngine;
}

export function createEngines(config: Config): Engines {
  return {
    opencv: new OpenCvEngine({
      workers: config.opencvWorkers,
      maxQueue: config.opencvMaxQueue,
      modelsDir: config.modelsDir,
      maxHeapBytes: config.workerMaxHeapMb * 1024 * 1024,
    }),
    onnx: new OnnxEngine({ workers: config.onnxWorkers, threads: config.onnxThreads, maxQueue: config.onnxMaxQueue, modelsDir: config.modelsDir }),
  };
}

export async function closeEngines(engines: Engines): Promise<void> {
  await Promise.all([engines.opencv.close(), engines.onnx.close()]);
}
