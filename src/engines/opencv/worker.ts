import { readFileSync } from 'node:fs';
import path from 'node:path';
import { workerData } from 'node:worker_threads';
import { decodeJpegRgbInto, jpegAddon } from '../../image/jpeg-decoder.js';
import { turboJpegSync } from '../../image/jpeg-turbo.js';
import { transferResult } from '../transfer.js';
import { CASCADES, cascadeWindow, isCascadeFileName } from './cascades.js';
import { chooseOpenCvBuild, loadOpenCv, type CV, type OpenCvBuild } from './load.js';
import type { Box, CannyEngine, CannyJpegResult, CannyJpegTask, CannyResult, CannyTask, DetectResult, DetectTask, OpenCvInfo, OpenCvTask } from './protocol.js';

const { modelsDir = '.', build, canny: cannyBy = 'native' } = (workerData ?? {}) as { modelsDir?: string; build?: OpenCvBuild; canny?: CannyEngine };

/** The addon's Canny (cv.Canny's bytes, a third of the wasm's time) unless the engine asked for OpenCV.js. */
const nativeCanny = cannyBy === 'native' ? jpegAddon() : null;

// One OpenCV instance per worker thread, loaded once when the worker starts, with the known
// cascades that are present loaded right after so the first request does not pay for parsing.
const cvReady: Promise<{ cv: CV }> = loadOpenCv(build).then((cv) => {
  for (const name of Object.values(CASCADES)) {
    try {
      cascade(cv, name);
    } catch {
      // Missing or unreadable: the resource reports it; a later task retries and fails with the reason.
    }
  }
  return { cv };
});

/** Settles once this worker can serve (for pools that wait for their workers to start). */
export const ready: Promise<unknown> = cvReady;

let loaded: CV | undefined;
void cvReady.then(({ cv }) => {
  loaded = cv;
});

/** Bytes of wasm memory this worker holds; it grows with the largest image seen and never shrinks. */
export function heapBytes(): number {
  // Read through the module each time: growing the memory replaces HEAPU8 with a view of a new buffer.
  return loaded?.HEAPU8?.byteLength ?? 0;
}

const classifiers = new Map<string, CV>();
/** Each cascade's detection window (opencv.js does not expose getOriginalWindowSize). */
const windows = new Map<string, [number, number]>();

/** The classifier for a cascade file, parsed once per worker and kept for the worker's life. */
function cascade(cv: CV, name: string): CV {
  const cached = classifiers.get(name);
  if (cached) return cached;
  if (!isCascadeFileName(name)) throw new Error(`invalid cascade file name ${JSON.stringify(name)}`);
  const bytes = readFileSync(path.join(modelsDir, name));
  // The wasm file system only needs the file while load() parses it.
  cv.FS_createDataFile('/', name, bytes, true, false, false);
  const classifier = new cv.CascadeClassifier();
  let loaded = false;
  try {
    loaded = classifier.load(name);
  } finally {
    cv.FS_unlink(`/${name}`);
    if (!loaded) classifier.delete();
  }
  if (!loaded) throw new Error(`OpenCV could not parse cascade ${name}`);
  classifiers.set(name, classifier);
  const window = cascadeWindow(bytes.subarray(0, 64 * 1024).toString('latin1'));
  if (window) windows.set(name, window);
  return classifier;
}

/** Which build this worker runs, read from the loaded module (so a setting lost on the way shows). */
function info(cv: CV): OpenCvInfo {
  const text = String(cv.getBuildInformation());
  const version = /General configuration for OpenCV (\S+)/.exec(text)?.[1] ?? 'unknown';
  const simd = /-msimd128/.test(text);
  return { build: chooseOpenCvBuild(build), version, simd };
}

function matType(cv: CV, channels: number): number {
  return channels === 1 ? cv.CV_8UC1 : channels === 3 ? cv.CV_8UC3 : cv.CV_8UC4;
}

/** Gray copy of the image; RGB2GRAY on RGB gives exactly native OpenCV's BGR2GRAY on the same pixels. */
function toGray(cv: CV, src: CV, channels: number, gray: CV): void {
  if (channels === 1) src.copyTo(gray);
  else cv.cvtColor(src, gray, channels === 3 ? cv.COLOR_RGB2GRAY : cv.COLOR_RGBA2GRAY);
}

function canny(cv: CV, task: CannyTask): unknown {
  const { image } = task;
  if (nativeCanny?.cannySync) {
    // Not zero-filled (the addon writes every byte), and not from Buffer's shared pool: it moves to the main thread.
    const data = Buffer.allocUnsafeSlow(image.width * image.height);
    const why = nativeCanny.cannySync(image.data, image.width, image.height, image.channels, task.threshold1, task.threshold2, data);
    if (why !== null) throw new Error(`edge map: ${why}`);
    return cannyResult(data, image);
  }
  const src = new cv.Mat(image.height, image.width, matType(cv, image.channels));
  const gray = new cv.Mat();
  const edges = new cv.Mat();
  try {
    src.data.set(image.data);
    toGray(cv, src, image.channels, gray);
    cv.Canny(gray, edges, task.threshold1, task.threshold2);
    // Copied out of the wasm heap into a buffer of its own, which then moves to the main thread
    // instead of being cloned (transferResult).
    return cannyResult(new Uint8Array(edges.data as Uint8Array), image);
  } finally {
    src.delete();
    gray.delete();
    edges.delete();
  }
}

function cannyResult(data: Uint8Array, size: { width: number; height: number }): unknown {
  const result: CannyResult = { image: { data, width: size.width, height: size.height, channels: 1 } };
  return transferResult(result, [data.buffer as ArrayBuffer]);
}

function cannyJpeg(cv: CV, task: CannyJpegTask): unknown {
  if (nativeCanny?.cannyJpegSync) {
    const edges = Buffer.allocUnsafeSlow(task.width * task.height);
    if (nativeCanny.cannyJpegSync(task.jpeg, task.width, task.height, task.threshold1, task.threshold2, edges) !== null) return { jpeg: null } satisfies CannyJpegResult;
    return encodedEdges(edges, task);
  }
  const src = new cv.Mat(task.height, task.width, cv.CV_8UC3);
  const gray = new cv.Mat();
  const edges = new cv.Mat();
  try {
    if (!decodeJpegRgbInto(task.jpeg, src.data as Uint8Array, task.width, task.height)) return { jpeg: null } satisfies CannyJpegResult;
    cv.cvtColor(src, gray, cv.COLOR_RGB2GRAY);
    cv.Canny(gray, edges, task.threshold1, task.threshold2);
    return encodedEdges(edges.data as Uint8Array, task);
  } finally {
    src.delete();
    gray.delete();
    edges.delete();
  }
}

function encodedEdges(edges: Uint8Array, task: CannyJpegTask): unknown {
  const jpeg = turboJpegSync({ data: edges, width: task.width, height: task.height, channels: 1 }, task.quality);
  if (!jpeg) return { jpeg: null } satisfies CannyJpegResult;
  const result: CannyJpegResult = { jpeg };
  return transferResult(result, [jpeg.buffer as ArrayBuffer]);
}

function detect(cv: CV, task: DetectTask): DetectResult {
  const { image } = task;
  const classifier = cascade(cv, task.cascade);
  const src = new cv.Mat(image.height, image.width, matType(cv, image.channels));
  const gray = new cv.Mat();
  const rects = new cv.RectVector();
  try {
    src.data.set(image.data);
    toGray(cv, src, image.channels, gray);
    // No equalizeHist: it costs the frontal-face cascade a face and adds a false positive (see MANIFEST).
    const calls = task.ranges ?? [{ minSize: task.minSize, maxSize: task.maxSize ?? 0 }]; // maxSize 0: up to the image size
    const boxes: Box[] = [];
    const start = performance.now();
    for (const range of calls) {
      classifier.detectMultiScale(gray, rects, task.scaleFactor, task.minNeighbors, 0, new cv.Size(range.minSize, range.minSize), new cv.Size(range.maxSize, range.maxSize));
      for (let i = 0; i < rects.size(); i++) {
        const r = rects.get(i);
        boxes.push([r.x, r.y, r.x + r.width, r.y + r.height]);
      }
    }
    const detectMs = performance.now() - start;
    return { boxes, detectMs, window: windows.get(task.cascade), ...(task.ranges ? { calls: calls.length } : {}) };
  } finally {
    src.delete();
    gray.delete();
    rects.delete();
  }
}

export default async function handle(task: OpenCvTask): Promise<unknown> {
  const { cv } = await cvReady;
  switch (task.op) {
    case 'canny':
      return canny(cv, task);
    case 'canny-jpeg':
      return cannyJpeg(cv, task);
    case 'detect':
      return detect(cv, task);
    case 'info':
      return info(cv);
    default:
      throw new Error(`unknown OpenCV op ${(task as { op: string }).op}`);
  }
}
