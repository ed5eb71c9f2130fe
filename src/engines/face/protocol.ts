import type { RawImage } from '../../image/types.js';

/** A box in pixel coordinates of the image sent: [x1, y1, x2, y2], integers, clamped to the image. */
export type FaceBox = [number, number, number, number];

export interface FaceDetection {
  box: FaceBox;
  /** The SSD detector's score, 0..1. */
  score: number;
}

export interface FaceDescription extends FaceDetection {
  /** 128 floats (dlib ResNet embedding); compare with Euclidean distance. */
  descriptor: Float32Array;
}

export interface FaceOptions {
  /** Faces scoring below this are not reported (default DEFAULT_FACE_MIN_CONFIDENCE). */
  minConfidence?: number;
  /** Most faces kept, the most confident first (default: the engine's maxFaces). */
  maxFaces?: number;
  /** describe: every face is detected, but only the largest is described (register, match): one description per image. */
  largestOnly?: boolean;
}

export interface FaceWorkerData {
  /** Longer side images are shrunk to before detection (bounds the wasm heap). */
  maxSide: number;
}

export interface FaceTask {
  op: 'detect' | 'describe';
  image: RawImage;
  minConfidence: number;
  maxFaces: number;
  largestOnly?: boolean;
}

export interface FaceTimings {
  /** Shrinking the image to maxSide (0 when it was small enough). */
  resizeMs: number;
  /** SSD detection. */
  detectMs: number;
  /** Landmarks + descriptors of every face described (0 for detect). */
  describeMs: number;
}

export interface FaceResult<F extends FaceDetection = FaceDetection> {
  /** Largest box first (ties: higher score first). */
  faces: F[];
  /** Faces the detector found (more than `faces` when only the largest was described). */
  detected: number;
  timings: FaceTimings;
  /** Tensors alive in the worker after the task (the models' weights only, if none leaked). */
  numTensors: number;
}

export interface FaceLoadResult {
  loadMs: number;
  numTensors: number;
  heapBytes: number;
  threadId: number;
}
