import type { InferenceSession } from 'onnxruntime-node';
import { fastInt8KernelsAreExact } from './int8-kernels.js';
import type { OnnxWorkerData } from './protocol.js';

/** The ONNX Runtime session options every model's worker opens its session with. */
export function sessionOptions(data: Pick<OnnxWorkerData, 'intraOpNumThreads' | 'memoryArena'>, exactInt8 = !fastInt8KernelsAreExact()): InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: data.intraOpNumThreads,
    interOpNumThreads: 1,
    enableCpuMemArena: data.memoryArena,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Old exporters trigger harmless warnings ("Initializer appears in graph inputs").
    logSeverityLevel: 3,
    // int8 models: exact u8u8 kernels only where the fast ones saturate (see int8-kernels.ts).
    // No spin-waiting between ops: ORT's intra-op threads otherwise burn a core polling for work,
    // which on a small machine takes it from the other workers (OpenCV, other models).
    extra: { session: { ...(exactInt8 ? { x64quantprecision: '1' } : {}), intra_op: { allow_spinning: '0' } } },
  };
}
