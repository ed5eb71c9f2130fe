import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RawImage } from './types.js';

/**
 * JPEG to RGB with the system's libjpeg-turbo through cvserve's own addon (native/jpeg, built by
 * `npm ci` where libjpeg's headers are installed), on libuv's thread pool. Exact integer IDCT and
 * fancy upsampling: the same pixels as sharp and as OpenCV's imdecode (tests/image/jpeg-decoder.test.ts),
 * in about half sharp's CPU time (test_face_processing.jpg 6.3 → 3.5 ms, car.jpg 18.1 → 9.5 ms;
 * bench/NOTES.md, issue 24). No npm package fits: @julusian/jpeg-turbo always decodes with
 * TJFLAG_FASTDCT, which moves Canny edges and Haar boxes.
 */
interface JpegAddon {
  decodeRgb(jpeg: Uint8Array, out: Uint8Array, width: number, height: number): Promise<void>;
  /** The same, blocking (for a worker thread decoding into memory it owns): null when decoded, else why not. */
  decodeRgbSync(jpeg: Uint8Array, out: Uint8Array, width: number, height: number): string | null;
  /** sharp's bicubic enlargement of 3-channel pixels, on libuv's thread pool (native/jpeg/enlarge.c; see enlarge.ts). */
  enlargeBicubic?(src: Uint8Array, width: number, height: number, out: Uint8Array, outWidth: number, outHeight: number, vector?: boolean): Promise<void>;
  /** enlargeBicubic from the JPEG itself: decoded (as decodeRgb does) into memory of its own, enlarged, freed. */
  enlargeJpeg?(jpeg: Uint8Array, width: number, height: number, out: Uint8Array, outWidth: number, outHeight: number): Promise<void>;
  /** sharp's reduce of 3-channel pixels and a window of it, on libuv's thread pool (native/jpeg/reduce.c; see reduce.ts). */
  reduceResize?(src: Uint8Array, width: number, height: number, out: Uint8Array, hshrink: number, vshrink: number, kernel: number, left: number, top: number, outWidth: number, outHeight: number): Promise<void>;
  /** reduceResize from the JPEG itself: decoded (as decodeRgb does) into memory of its own, reduced, freed. */
  reduceJpeg?(jpeg: Uint8Array, width: number, height: number, out: Uint8Array, hshrink: number, vshrink: number, kernel: number, left: number, top: number, outWidth: number, outHeight: number): Promise<void>;
  /** cv.Canny(gray(pixels), threshold1, threshold2) into `out` (native/jpeg/canny.c), blocking: null when done, else why not. */
  cannySync?(pixels: Uint8Array, width: number, height: number, channels: number, threshold1: number, threshold2: number, out: Uint8Array): string | null;
  /** cannySync of the JPEG decoded as decodeRgb decodes it: null when done, else why not (libjpeg refused the file). */
  cannyJpegSync?(jpeg: Uint8Array, width: number, height: number, threshold1: number, threshold2: number, out: Uint8Array): string | null;
  /** packImage's float arithmetic, blocking (native/jpeg/pack.c; see preprocess.ts). */
  packFloat32?(rgb: Uint8Array, pixels: number, out: Float32Array, offset: number, nchw: boolean, from0: number, from1: number, from2: number, a0: number, a1: number, a2: number, b0: number, b1: number, b2: number): void;
  /** packSpaceToDepth's arithmetic and layout, blocking (native/jpeg/pack.c). */
  packFloat32SpaceToDepth?(rgb: Uint8Array, width: number, height: number, out: Float32Array, offset: number, blocks: Int32Array, from0: number, from1: number, from2: number, a0: number, a1: number, a2: number, b0: number, b1: number, b2: number): void;
}

export type JpegDecoderChoice = 'libjpeg' | 'sharp';

const ADDON = path.join('native', 'jpeg', 'build', 'Release', 'cvserve_jpeg.node');

let addon: JpegAddon | null | undefined;
let loadError: string | undefined;

/** native/jpeg's addon of the checkout or install this file belongs to (src/… under tsx, dist/src/… compiled). */
function findAddon(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

/** The addon, or null where it was not built or cannot load (then sharp decodes every JPEG). */
export function jpegAddon(): JpegAddon | null {
  if (addon === undefined) {
    const file = findAddon();
    try {
      if (!file) throw new Error(`${ADDON} is not built (npm ci builds it where libjpeg's headers are installed)`);
      addon = createRequire(import.meta.url)(file) as JpegAddon;
    } catch (err) {
      loadError = (err as Error).message;
      addon = null;
    }
  }
  return addon;
}

/** Why the addon is not in use, for the startup log; undefined when it loaded. */
export function jpegAddonProblem(): string | undefined {
  jpegAddon();
  return loadError;
}

/**
 * The JPEG as RGB when libjpeg decodes it cleanly at exactly width x height; null otherwise (no
 * addon, a colour space or precision it does not handle, any warning such as truncated data): the
 * caller then decodes with sharp, whose answer stands. The caller has checked the size against its
 * pixel limit: the output buffer is allocated here from it.
 */
export async function decodeJpegRgb(jpeg: Buffer, width: number, height: number): Promise<RawImage | null> {
  const decoder = jpegAddon();
  if (!decoder) return null;
  // A buffer of its own (not from Buffer's pool, not zero-filled: every byte is written), so it can move to a worker.
  const data = Buffer.allocUnsafeSlow(width * height * 3);
  try {
    await decoder.decodeRgb(jpeg, data, width, height);
  } catch {
    return null;
  }
  return { data, width, height, channels: 3 };
}

/**
 * Decodes into `out` (width x height x 3 bytes, e.g. an OpenCV Mat in a worker's WebAssembly heap),
 * blocking the calling thread: true when decoded, false when the addon is missing or refuses the file.
 */
export function decodeJpegRgbInto(jpeg: Uint8Array, out: Uint8Array, width: number, height: number): boolean {
  const decoder = jpegAddon();
  return decoder !== null && decoder.decodeRgbSync(jpeg, out, width, height) === null;
}
