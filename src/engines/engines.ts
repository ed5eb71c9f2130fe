import type { Config } from '../config.js';
import { ModelStore } from '../models/store.js';
import { FaceEngine } from './face/engine.js';
import { OnnxEngine } from './onnx/engine.js';
import { OpenCvEngine } from './opencv/engine.js';
import type { PoolStats } from './pool.js';

/** The compute engines resources drive. Created once per app; closed at shutdown. */
export interface Engines {
  opencv: OpenCvEngine;
  onnx: OnnxEngine;
  /** The models directory: sha256-verified access to manifest files, background fetch of missing ones. */
  models: ModelStore;
  /** face-api on tfjs wasm (SSD detector, landmarks, descriptors); its workers start on the first face task. */
  face: FaceEngine;
}

export function createEngines(config: Config): Engines {
  // The manifest first: an invalid one fails startup before any worker thread exists.
  const models = ModelStore.fromConfig(config);
  const face = new FaceEngine({
    workers: config.faceWorkers,
    maxQueue: config.faceMaxQueue,
    maxHeapBytes: config.faceMaxHeapMb * 1024 * 1024,
    preload: config.facePreload,
    maxSide: config.faceMaxSide,
    maxFaces: config.faceMaxFaces,
  });
  return {
    opencv: new OpenCvEngine({
      workers: config.opencvWorkers,
      maxQueue: config.opencvMaxQueue,
      prefetch: config.opencvPrefetch,
      modelsDir: config.modelsDir,
      maxHeapBytes: config.workerMaxHeapMb * 1024 * 1024,
      splitMinPixels: config.detectSplitMinPixels,
      maxPyramidPixelsPerCall: config.detectPyramidPixelsPerCall,
      build: config.opencvBuild,
      canny: config.cannyEngine,
    }),
    onnx: new OnnxEngine({
      workers: config.onnxWorkers,
      threads: config.onnxThreads,
      busyThreads: onnxBusyThreads(config),
      maxQueue: config.onnxMaxQueue,
      prefetch: config.onnxPrefetch,
      modelsDir: config.modelsDir,
      batchMax: config.onnxBatchMax,
      batchWaitMs: config.onnxBatchWaitMs,
      memoryArena: config.onnxMemoryArena,
    }),
    models,
    face,
  };
}

/** Every worker pool of the engines (OpenCV's, one per loaded ONNX model, the face engine's once started), for health and metrics. */
export function poolStats(engines: Pick<Engines, 'opencv' | 'onnx'> & Partial<Pick<Engines, 'face'>>): PoolStats[] {
  return [engines.opencv.stats(), ...engines.onnx.stats(), ...(engines.face?.stats() ?? [])];
}

export async function closeEngines(engines: Engines): Promise<void> {
  await Promise.all([engines.models.close(), engines.opencv.close(), engines.onnx.close(), engines.face.close()]);
}

/** CVSERVE_ONNX_BUSY_THREADS as a count: auto shares the threads among the workers. */
export function onnxBusyThreads(config: Pick<Config, 'onnxBusyThreads' | 'onnxThreads' | 'onnxWorkers'>): number {
  return config.onnxBusyThreads === 'auto' ? Math.max(1, Math.floor(config.onnxThreads / config.onnxWorkers)) : config.onnxBusyThreads;
}
