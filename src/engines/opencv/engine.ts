import type { RawImage } from '../../image/types.js';
import { siblingModule, WorkerPool, type PoolStats } from '../pool.js';
import type { OpenCvBuild } from './load.js';
import type { Box, CannyEngine, CannyJpegResult, CannyResult, DetectOptions, DetectResult, OpenCvInfo } from './protocol.js';
import { groupRectangles, planScaleTasks, type Rect, type ScaleRange } from './split.js';

export type { Box, CannyEngine, DetectOptions } from './protocol.js';

export interface OpenCvEngineOptions {
  workers: number;
  maxQueue: number;
  /** Tasks a busy worker holds besides the one it runs (WorkerPoolOptions.prefetch). */
  prefetch?: number;
  modelsDir: string;
  /** A worker whose wasm heap passes this is replaced between tasks (0 or unset: never). */
  maxHeapBytes?: number;
  /**
   * Images with at least this many pixels have one detection split by scale across the idle
   * workers (same answer, lower latency). 0 or unset: never split.
   */
  splitMinPixels?: number;
  /** Which OpenCV.js build the workers load (default: the SIMD build when shipped, else npm's). */
  build?: OpenCvBuild;
  /** Who computes Canny edge maps (default `native`: the addon where it is built, else OpenCV.js). */
  canny?: CannyEngine;
  /** Most pyramid pixels per detectMultiScale call (default MAX_PYRAMID_PIXELS_PER_CALL); tests lower it. */
  maxPyramidPixelsPerCall?: number;
}

/**
 * Most pyramid pixels one detectMultiScale call may lay out (CVSERVE_DETECT_PYRAMID_PIXELS_PER_CALL).
 * The wasm heap starts at 128 MiB and never shrinks. Measured with the SIMD build on car.jpg
 * (2372x1334, minSize 25, scaleFactor 1.1, an 18 M-pixel pyramid), heap after one detection:
 * frontalcatface_extended 344 MiB at 16 M per call, 233 at 8 M, 162 at 4 M, 154 at 2 M, 128 (not
 * grown) at 1 M; frontalface_alt 154 MiB at 16 M, 128 at 4 M. At scaleFactor 1.01 (106 M) one call
 * passes the heap's 1 GiB maximum: it traps or, worse, returns no detections. A larger search is
 * split into calls of at most this size, run in turn, whose raw candidates are grouped once: the
 * same answer.
 */
export const MAX_PYRAMID_PIXELS_PER_CALL = 4_000_000;

/** OpenCV (wasm) behind a pool of worker threads. Nothing here runs OpenCV on the calling thread. */
export class OpenCvEngine {
  private readonly pool: WorkerPool;
  /** Detection window per cascade, learned from the first result (needed to plan a scale split). */
  private readonly windows = new Map<string, [number, number]>();

  constructor(readonly options: OpenCvEngineOptions) {
    this.pool = new WorkerPool({
      name: 'opencv',
      filename: siblingModule(import.meta.url, 'worker'),
      size: options.workers,
      maxQueue: options.maxQueue,
      prefetch: options.prefetch,
      workerData: { modelsDir: options.modelsDir, build: options.build, canny: options.canny },
      maxHeapBytes: options.maxHeapBytes,
    });
  }

  /** Which OpenCV build a worker loaded, as that worker reports it. */
  async info(signal?: AbortSignal): Promise<OpenCvInfo> {
    return this.pool.run<OpenCvInfo>({ op: 'info' }, { signal });
  }

  /** Edge map of `image`. With `handOver`, its pixels move to the worker (no 3-bytes-a-pixel copy) and are unusable here afterwards. */
  async canny(image: RawImage, threshold1: number, threshold2: number, signal?: AbortSignal, handOver = false): Promise<RawImage> {
    const [pixels, transferList] = handOver && ownsItsBuffer(image.data) ? [image, [image.data.buffer as ArrayBuffer]] : ownCopy(image);
    const result = await this.pool.run<CannyResult>({ op: 'canny', image: pixels, threshold1, threshold2 }, { signal, transferList });
    return result.image;
  }

  /**
   * Edge map of a JPEG as a gray JPEG of `quality`, decoded and encoded inside the worker (the same
   * bytes as canny() then encodeImage()); null when the worker cannot decode the file (no addon,
   * or libjpeg refuses it): decode it another way and call canny().
   */
  async cannyJpeg(jpeg: Buffer, size: { width: number; height: number }, threshold1: number, threshold2: number, quality: number, signal?: AbortSignal): Promise<Buffer | null> {
    const result = await this.pool.run<CannyJpegResult>({ op: 'canny-jpeg', jpeg, width: size.width, height: size.height, threshold1, threshold2, quality }, { signal });
    return result.jpeg && Buffer.from(result.jpeg.buffer, result.jpeg.byteOffset, result.jpeg.byteLength);
  }

  /**
   * Haar cascade detection. Boxes are [x1, y1, x2, y2] in the pixels of `image`. The pixels are
   * copied to the worker, so `image` stays usable (e.g. a cached decode drawn on afterwards).
   */
  async detect(image: RawImage, options: DetectOptions, signal?: AbortSignal): Promise<Box[]> {
    const result = await this.detectTimed(image, options, signal);
    return result.boxes;
  }

  /** detect() plus the time spent in detectMultiScale inside the worker. */
  async detectTimed(image: RawImage, options: DetectOptions, signal?: AbortSignal): Promise<DetectResult> {
    const { cascade, scaleFactor, minNeighbors, minSize } = options;
    const tasks = this.scaleTasks(image, options);
    if (tasks.length > 1 || tasks[0]!.length > 1) return this.detectInRanges(image, options, tasks, signal);
    const [pixels, transferList] = ownCopy(image);
    const result = await this.pool.run<DetectResult>({ op: 'detect', image: pixels, cascade, scaleFactor, minNeighbors, minSize }, { signal, transferList });
    if (result.window) this.windows.set(cascade, result.window);
    return result;
  }

  /**
   * The tasks one detection is made of, each a list of scale ranges one worker searches in turn:
   * one task of one range, or ranges that keep each call's pyramid within
   * MAX_PYRAMID_PIXELS_PER_CALL, shared out as one task per idle worker when the image is large
   * enough (splitMinPixels) and nothing waits.
   */
  private scaleTasks(image: RawImage, options: DetectOptions): ScaleRange[][] {
    const window = options.window ?? this.windows.get(options.cascade);
    if (!window) return [[{ minSize: options.minSize, maxSize: 0 }]];
    const threshold = this.options.splitMinPixels ?? 0;
    // Only spare capacity is shared: under load every worker already has a request of its own.
    const stats = this.pool.stats();
    const idle = stats.size - stats.running;
    const share = threshold > 0 && image.width * image.height >= threshold && idle >= 2 && stats.queued === 0;
    return planScaleTasks(image.width, image.height, window, options.scaleFactor, options.minSize, {
      parts: share ? idle : 1,
      maxPixels: this.options.maxPyramidPixelsPerCall ?? MAX_PYRAMID_PIXELS_PER_CALL,
    });
  }

  /**
   * One detection as scale ranges, each searched with minNeighbors 0 for its raw candidates, which
   * are grouped once here exactly as detectMultiScale groups them. Each task goes to a worker with
   * its own copy of the pixels and searches its ranges one after another, on one gray copy.
   */
  private async detectInRanges(image: RawImage, options: DetectOptions, tasks: ScaleRange[][], signal?: AbortSignal): Promise<DetectResult> {
    const { cascade, scaleFactor, minNeighbors } = options;
    const parts = await Promise.all(
      tasks.map((ranges) => {
        const [pixels, transferList] = ownCopy(image);
        return this.pool.run<DetectResult>({ op: 'detect', image: pixels, cascade, scaleFactor, minNeighbors: 0, minSize: ranges[0]!.minSize, ranges }, { signal, transferList });
      }),
    );
    const boxes = grouped(parts.flatMap((p) => p.boxes), minNeighbors);
    const calls = parts.reduce((n, p) => n + (p.calls ?? 1), 0);
    return { boxes, detectMs: Math.max(...parts.map((p) => p.detectMs)), window: parts[0]?.window, calls, ...(parts.length > 1 ? { parts: parts.length } : {}) };
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Raw candidates grouped exactly as detectMultiScale groups them. */
function grouped(candidates: Box[], minNeighbors: number): Box[] {
  const rects = candidates.map(([x1, y1, x2, y2]): Rect => [x1, y1, x2 - x1, y2 - y1]);
  return groupRectangles(rects, minNeighbors).map(([x, y, w, h]): Box => [x, y, x + w, y + h]);
}

/** Whether the pixels are their ArrayBuffer's only content (so moving it moves nothing else). */
function ownsItsBuffer(data: Uint8Array): boolean {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
}

/**
 * The pixels in a fresh buffer of their own, to transfer to a worker: one copy, where cloning
 * sharp's (untransferable) output buffer costs two (measured on car.jpg's 9.5 MB: 8.2-10.5 ms
 * CPU cloned, 3.9-5.7 ms copied and transferred). The caller's image stays untouched.
 */
function ownCopy(image: RawImage): [RawImage, ArrayBuffer[]] {
  const data = new Uint8Array(image.data.length);
  data.set(image.data);
  return [{ ...image, data }, [data.buffer]];
}
