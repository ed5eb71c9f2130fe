import type { InputPacking } from '../../image/pack.js';
import type { TextDetectTask, TextRecognizeTask, TextWorkerConfig } from './text/protocol.js';

/**
 * Messages between the main thread and an ONNX worker. Tensor buffers travel as transferables
 * both ways: the caller gives up its feed buffers, and output buffers move back without a copy.
 */
export type TensorData = Float32Array | Uint8Array;

export interface TensorMsg<D extends TensorData = TensorData> {
  data: D;
  dims: number[];
  /** Where a run kept only some rows of a `[1, rows, width]` output (RowFilter): their indices, ascending; dims then count the kept rows. */
  rows?: Int32Array;
}

/**
 * Only the rows of a `[1, rows, width]` output whose `column` is at least `min`, with their indices:
 * a detector's candidates, instead of every anchor (YOLOX at 416: 3549 rows of 85 floats, 1.2 MB
 * a frame to move and to collect on the main thread).
 */
export interface RowFilter {
  output: string;
  column: number;
  min: number;
}

/** Input tensors by input name. */
export type Feeds = Record<string, TensorMsg>;
/** Output tensors by output name; every numeric output arrives as float32. */
export type Outputs = Record<string, TensorMsg<Float32Array>>;

export interface WarmupInput {
  dims: number[];
  dtype: 'float32' | 'uint8';
}

/** Everything a worker needs to open its model; one pool (so one workerData) per model. */
export interface OnnxWorkerData {
  modelId: string;
  modelPath: string;
  intraOpNumThreads: number;
  /**
   * Intra-op threads of a run that starts while another worker of the model is running one: each
   * worker then holds a second session with this many threads (unset: one session).
   */
  busyThreads?: number;
  /** One cell per worker of the model's pool, 1 while that worker's session runs: how a worker sees the others'. */
  running?: { cells: SharedArrayBuffer; slot: number };
  /** ONNX Runtime's CPU memory arena: on keeps the largest run's buffers for the next run. */
  memoryArena: boolean;
  /** Zero-filled inputs for the one warm-up run after the session is created. */
  warmup: Record<string, WarmupInput>;
  /** A text model: the worker also packs its input and decodes its output (text-detect / text-recognize tasks). */
  text?: TextWorkerConfig;
  /** Input dims to free as the model is loaded (src/engines/onnx/free-dims.ts). */
  freeDims?: Record<string, readonly number[]>;
  /** The tensor (and its dims) to feed the graph at instead of its input, once the dims are freed. */
  feedFrom?: { tensor: string; dims: Array<number | string> };
  /** One more warm-up run for each (another input size). */
  extraWarmups?: Record<string, WarmupInput>[];
  /** Float inputs the worker packs itself when a run sends them as 8-bit RGB (feed dims as for the floats). */
  packs?: Record<string, InputPacking>;
}

export type OnnxTask =
  /** Create (once) and warm up this worker's session. */
  | { op: 'load' }
  | { op: 'run'; feeds: Feeds; outputs?: string[]; keepRows?: RowFilter }
  | TextDetectTask
  | TextRecognizeTask;

export interface LoadResult {
  /** Session creation + warm-up time in this worker, or 0 when it was already loaded. */
  loadMs: number;
  threadId: number;
}

export interface RunResult {
  outputs: Outputs;
  /** session.run time in the worker. */
  runMs: number;
  /** Intra-op threads of the session that ran (fewer while another worker of the model was running). */
  threads: number;
}

/** The buffers of tensors, for a transfer list (each buffer once). */
export function tensorBuffers(tensors: Record<string, TensorMsg>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const t of Object.values(tensors)) {
    const { buffer } = t.data;
    // Only whole, ordinary buffers: a view into a larger or shared buffer is copied instead.
    if (buffer instanceof ArrayBuffer && t.data.byteOffset === 0 && t.data.byteLength === buffer.byteLength) buffers.add(buffer);
  }
  return [...buffers];
}
