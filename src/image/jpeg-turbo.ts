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
  compress(raw: Buffer, options: { format: number; width: number; height: number; subsampling: number; quality: number }): Promise<Buffer>;
  compressSync(raw: Buffer, options: { format: number; width: number; height: number; subsampling: number; quality: number }): Buffer;
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

/** Gray or RGB pixels as a JPEG (4:2:0 chroma for RGB, as sharp does), or null when libjpeg-turbo is not available or the pixels have alpha. */
export async function turboJpeg(image: RawImage, quality: number): Promise<Buffer | null> {
  const turbo = jpegTurbo();
  if (!turbo || (image.channels !== 1 && image.channels !== 3)) return null;
  return turbo.compress(view(image), options(turbo, image, quality));
}

/** turboJpeg blocking the calling thread (a worker encoding from memory it owns), with the same bytes. */
export function turboJpegSync(image: RawImage, quality: number): Buffer | null {
  const turbo = jpegTurbo();
  if (!turbo || (image.channels !== 1 && image.channels !== 3)) return null;
  return turbo.compressSync(view(image), options(turbo, image, quality));
}

function view(image: RawImage): Buffer {
  return Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
}

function options(turbo: JpegTurbo, image: RawImage, quality: number) {
  const gray = image.channels === 1;
  return { format: gray ? turbo.FORMAT_GRAY : turbo.FORMAT_RGB, width: image.width, height: image.height, subsampling: gray ? turbo.SAMP_GRAY : turbo.SAMP_420, quality };
}
