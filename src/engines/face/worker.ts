import { createRequire } from 'node:module';
import { threadId, workerData } from 'node:worker_threads';
import { faceApiPaths } from './paths.js';
import type { FaceBox, FaceDescription, FaceDetection, FaceLoadResult, FaceResult, FaceTask, FaceWorkerData } from './protocol.js';
import { shrinkToRgb, type ShrunkRgb } from './shrink.js';

/**
 * One face-api instance per worker thread, on tfjs's wasm backend: the SSD MobileNet v1 face
 * detector, the 68-point landmark net (to align each face) and dlib's ResNet face-recognition net
 * (128-d descriptors). Weights are read from the face-api package's own model/ directory and the
 * wasm binaries from the local tfjs-backend-wasm package: nothing is fetched. Every tensor made
 * here is disposed; `numTensors` in each answer lets tests check that.
 */

// The subset of face-api and tfjs used here (the package's bundled typings pull in files it does not ship).
interface Tensor {
  dispose(): void;
}
interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}
interface Detection {
  score: number;
  box: Box;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  tensor3d(values: Int32Array | Uint8Array, shape: [number, number, number], dtype: 'int32'): Tensor;
  memory(): { numTensors: number };
  backend(): { wasm?: { HEAPU8?: Uint8Array } };
  setWasmPaths(prefix: string): void;
  env(): { set(flag: string, value: unknown): void };
}
interface Net {
  loadFromDisk(dir: string): Promise<void>;
}
interface FaceApi {
  tf: Tf;
  nets: {
    ssdMobilenetv1: Net;
    faceLandmark68Net: Net & { detectLandmarks(input: Tensor): Promise<unknown> };
    faceRecognitionNet: Net & { computeFaceDescriptor(input: Tensor): Promise<unknown> };
  };
  SsdMobilenetv1Options: new (options: { minConfidence: number; maxResults: number }) => unknown;
  detectAllFaces(input: Tensor, options: unknown): PromiseLike<Detection[]>;
  extendWithFaceDetection(source: object, detection: Detection): { detection: Detection };
  /** face-api's landmarks step over detections already made (what `detectAllFaces(...).withFaceLandmarks()` runs). */
  DetectAllFaceLandmarksTask: new (
    parent: Promise<{ detection: Detection }[]>,
    input: Tensor,
    useTinyLandmarkNet: boolean,
  ) => { withFaceDescriptors(): PromiseLike<{ detection: Detection; descriptor: Float32Array }[]> };
}

const data = (workerData ?? {}) as Partial<FaceWorkerData>;
const maxSide = data.maxSide ?? 1920;

let api: FaceApi | undefined;
let loadMs = 0;

async function load(): Promise<FaceApi> {
  const started = performance.now();
  const paths = faceApiPaths();
  // The node-wasm build requires @tensorflow/tfjs (pure JS) and the wasm backend; the package's
  // main entry would require @tensorflow/tfjs-node, which is not installed (its install downloads).
  const faceapi = createRequire(import.meta.url)(paths.nodeWasmBuild) as FaceApi;
  const { tf } = faceapi;
  tf.setWasmPaths(paths.wasmDir);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
  await tf.ready();
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(paths.modelDir);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(paths.modelDir);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(paths.modelDir);
  await warmUp(faceapi);
  api = faceapi;
  loadMs = performance.now() - started;
  return faceapi;
}

/**
 * One run of each net on blank input: the first inference of a net allocates and compiles its
 * kernels (about a second on the SSD), which would otherwise land on the first request.
 */
async function warmUp(faceapi: FaceApi): Promise<void> {
  const { tf } = faceapi;
  const blank = (size: number) => tf.tensor3d(new Int32Array(size * size * 3), [size, size, 3], 'int32');
  const frame = blank(64);
  const face = blank(150);
  try {
    await faceapi.detectAllFaces(frame, new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 1 }));
    await faceapi.nets.faceLandmark68Net.detectLandmarks(face);
    await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(face);
  } finally {
    frame.dispose();
    face.dispose();
  }
}

const loaded = load();
loaded.catch(() => {}); // reported through `ready` and every task
/** The pool starts serving this worker once the models are loaded. */
export const ready: Promise<unknown> = loaded;

/** The wasm heap, which grows with the largest image seen and never shrinks. */
export function heapBytes(): number {
  try {
    return api?.tf.backend().wasm?.HEAPU8?.byteLength ?? 0;
  } catch {
    return 0;
  }
}

/** A detector box (in the shrunk image) in the original image's pixels, rounded and clamped. */
function toBox(box: Box, shrunk: ShrunkRgb, width: number, height: number): FaceBox {
  const x = (v: number) => Math.min(width, Math.max(0, Math.round(v / shrunk.scaleX)));
  const y = (v: number) => Math.min(height, Math.max(0, Math.round(v / shrunk.scaleY)));
  return [x(box.x), y(box.y), x(box.x + box.width), y(box.y + box.height)];
}

function largerDetectionFirst(a: Detection, b: Detection): number {
  return b.box.width * b.box.height - a.box.width * a.box.height || b.score - a.score;
}

function largestFirst<F extends FaceDetection>(a: F, b: F): number {
  const area = (f: F) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
  return area(b) - area(a) || b.score - a.score;
}

async function run(faceapi: FaceApi, task: FaceTask): Promise<FaceResult<FaceDetection | FaceDescription>> {
  const { image } = task;
  const t0 = performance.now();
  const shrunk = shrinkToRgb(image, maxSide);
  const { rgb } = shrunk;
  const t1 = performance.now();
  const input = faceapi.tf.tensor3d(rgb.data, [rgb.height, rgb.width, 3], 'int32');
  // face-api takes a score threshold strictly between 0 and 1; the caller's 0 or 1 is applied below.
  const detectorMin = Math.min(0.999, Math.max(1e-3, task.minConfidence));
  const options = new faceapi.SsdMobilenetv1Options({ minConfidence: detectorMin, maxResults: task.maxFaces });
  let faces: (FaceDetection | FaceDescription)[];
  let detectMs: number;
  let describeMs = 0;
  let detected = 0;
  try {
    const found = (await faceapi.detectAllFaces(input, options)).filter((d) => d.score >= task.minConfidence);
    detectMs = performance.now() - t1;
    detected = found.length;
    if (task.op === 'detect') {
      faces = found.map((d) => ({ box: toBox(d.box, shrunk, image.width, image.height), score: d.score }));
    } else {
      // Every face is detected; landmarks and a descriptor only for those kept (the largest alone for `largestOnly`).
      const kept = task.largestOnly ? found.sort(largerDetectionFirst).slice(0, 1) : found;
      const parent = Promise.resolve(kept.map((d) => faceapi.extendWithFaceDetection({}, d)));
      const described = await new faceapi.DetectAllFaceLandmarksTask(parent, input, false).withFaceDescriptors();
      describeMs = performance.now() - t1 - detectMs;
      faces = described.map((f) => ({
        box: toBox(f.detection.box, shrunk, image.width, image.height),
        score: f.detection.score,
        descriptor: f.descriptor,
      }));
    }
  } finally {
    input.dispose();
  }
  faces.sort(largestFirst);
  return { faces, detected, timings: { resizeMs: t1 - t0, detectMs, describeMs }, numTensors: faceapi.tf.memory().numTensors };
}

export default async function handle(task: FaceTask | { op: 'load' }): Promise<unknown> {
  const faceapi = await loaded;
  if (task.op === 'load') {
    return { loadMs, numTensors: faceapi.tf.memory().numTensors, heapBytes: heapBytes(), threadId } satisfies FaceLoadResult;
  }
  if (task.op !== 'detect' && task.op !== 'describe') throw new Error(`unknown face op ${(task as { op: string }).op}`);
  return run(faceapi, task);
}
