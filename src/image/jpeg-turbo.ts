import { createRequire } from 'node:module';
import type { RawImage } from './types.js';

/**
 * JPEG encoding with libjpeg-turbo (@julusian/jpeg-turbo, prebuilt inside the npm package for
 * linux x64/arm64, glibc and musl), on libuv's thread pool like sharp's work, never on the event
 * loop. Chosen by measurement over sharp's mozjpeg (Huffman optimisation already off): an edge
 * map of test_face_processing.jpg 2.4 → 1.3 ms CPU, of car.jpg 11.9 → 6.5 ms, 1-3% fewer bytes,
 * PSNR against the raw map 43.6 vs 43.5 dB (bench/NOTES.md, issue 24).
 *
 * Only the encoder is used: this binding always decodes with TJFLAG_FASTDCT, whose pixels differ
 * from libjpeg's exact IDCT (what OpenCV's imdecode and sharp give) by up to 6 levels, which moves
 * Canny edges (IoU 0.91-0.96 against native OpenCV). Version 2.x: 3.x ships an N-API 10 binary,
 * which Node 20 (N-API 9) does not refuse cleanly but crashes on while loading (SIGSEGV in
 * napi_module_register_by_symbol), the segfault first seen here.
 */
interface JpegTurbo {
  FORMAT_GRAY: number;
  FORMAT_RGB: number;
  SAMP_GRAY: number;
  SAMP_420: number;
  bufferSize(options: { width: number; height: number; subsampling: number }): number;
  compress(raw: Buffer, out: Buffer, options: EncodeOptions): Promise<Buffer>;
  compressSync(raw: Buffer, out: Buffer, options: EncodeOptions): Buffer;
}

interface EncodeOptions {
  format: number;
  width: number;
  height: number;
  subsampling: number;
  quality: number;
}

let binding: JpegTurbo | null | undefined;

/** The binding, or null where it cannot load (no prebuilt binary for this platform): then sharp encodes. */
export function jpegTurbo(): JpegTurbo | null {
  if (binding === undefined) {
    try {
      binding = createRequire(import.meta.url)('@julusian/jpeg-turbo') as JpegTurbo;
    } catch {
      binding = null;
    }
  }
  return binding;
}

/**
 * Output buffers for the encoder, reused. Without one the binding allocates libjpeg-turbo's worst
 * case per call (tjBufSize: 6.4 MB for a 2372x1334 gray map, for a 0.5 MB JPEG) and the answer keeps
 * it alive: on the main thread that external memory made V8 run a full collection every four
 * car.jpg edge maps (about 8 ms of CPU per request, --trace-gc). The answer is an exact-size copy.
 */
const spares: Buffer[] = [];
const MAX_SPARES = 2;
const MAX_SPARE_BYTES = 32 * 1024 * 1024;

function outBuffer(size: number): Buffer {
  const i = spares.findIndex((b) => b.length >= size);
  return i >= 0 ? spares.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(size);
}

function giveBack(out: Buffer): void {
  if (out.length <= MAX_SPARE_BYTES && spares.length < MAX_SPARES) spares.push(out);
}

/** Gray or RGB pixels as a JPEG (4:2:0 chroma for RGB, as sharp does), or null when libjpeg-turbo is not available or the pixels have alpha. */
export async function turboJpeg(image: RawImage, quality: number): Promise<Buffer | null> {
  const turbo = jpegTurbo();
  if (!turbo || (image.channels !== 1 && image.channels !== 3)) return null;
  const opts = options(turbo, image, quality);
  const out = outBuffer(turbo.bufferSize(opts));
  try {
    return Buffer.from(await turbo.compress(view(image), out, opts));
  } finally {
    giveBack(out);
  }
}

/** turboJpeg blocking the calling thread (a worker encoding from memory it owns): the same bytes, alone in their ArrayBuffer (transferable). */
export function turboJpegSync(image: RawImage, quality: number): Buffer | null {
  const turbo = jpegTurbo();
  if (!turbo || (image.channels !== 1 && image.channels !== 3)) return null;
  const opts = options(turbo, image, quality);
  const out = outBuffer(turbo.bufferSize(opts));
  try {
    const jpeg = turbo.compressSync(view(image), out, opts);
    return Buffer.from(jpeg.buffer.slice(jpeg.byteOffset, jpeg.byteOffset + jpeg.byteLength));
  } finally {
    giveBack(out);
  }
}

function view(image: RawImage): Buffer {
  return Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
}

function options(turbo: JpegTurbo, image: RawImage, quality: number): EncodeOptions {
  const gray = image.channels === 1;
  return { format: gray ? turbo.FORMAT_GRAY : turbo.FORMAT_RGB, width: image.width, height: image.height, subsampling: gray ? turbo.SAMP_GRAY : turbo.SAMP_420, quality };
}
