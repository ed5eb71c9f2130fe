import type { InferenceSession } from 'onnxruntime-node';
import type { OnnxWorkerData } from './protocol.js';

/** The ONNX Runtime session options every model's worker opens its session with. */
export function sessionOptions(data: Pick<OnnxWorkerData, 'intraOpNumThreads' | 'memoryArena'>): InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: data.intraOpNumThreads,
    interOpNumThreads: 1,
    enableCpuMemArena: data.memoryArena,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Old exporters trigger harmless warnings ("Initializer appears in graph inputs").
    logSeverityLevel: 3,
    // int8 models: on x64 CPUs without VNNI (AVX2 only) the fast u8s8 kernels saturate and shift
    // the logits (MobileNetV2-int8 ranks car.jpg "convertible" over "sports car"); the exact
    // u8u8 kernels give the same answers as VNNI machines.
    // No spin-waiting between ops: ORT's intra-op threads otherwise burn a core polling for work,
    // which on a small machine takes it from the other workers (OpenCV, other models).
    extra: { session: { x64quantprecision: '1', intra_op: { allow_spinning: '0' } } },
  };
}
