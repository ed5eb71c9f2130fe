import sharp, { type Metadata, type Sharp } from 'sharp';
import { AppError } from '../errors.js';
import { bytesPerSample, decodeMemoryEstimate, type DecodeBudget } from './decode-memory.js';
import { decodeJpegRgb, jpegAddon, type JpegDecoderChoice } from './jpeg-decoder.js';
import { readJpegHeader, type JpegHeader } from './jpeg-header.js';
import { sniffImageType } from './sniff.js';
import type { ImageInput, RawImage } from './types.js';

export interface DecodeLimits {
  maxPixels: number;
  /** Who decodes a plain JPEG to RGB: libjpeg (cvserve's addon, where built; the default) or sharp. */
  jpegDecoder?: JpegDecoderChoice;
  /** CVSERVE_DECODE_MEMORY_BYTES, shared by the process's decodes; without it decodes run unchecked. */
  budget?: DecodeBudget;
  /** The request's: ends a wait for the budget. */
  signal?: AbortSignal;
}

// libvips shares a thread pool across requests; keep its cache small, the service never reuses images.
sharp.cache({ memory: 64, files: 0, items: 32 });

/**
 * Validates image bytes without decoding the pixels: type from the magic number (415 for SVG or
 * unknown), dimensions from the header (422 when unreadable), pixel limit and decode memory (413).
 * The returned ImageInput decodes lazily and at most once to RGB.
 */
export async function openImage(bytes: Buffer, limits: DecodeLimits): Promise<ImageInput> {
  if (bytes.length === 0) throw new AppError('UNDECODABLE_IMAGE', { publicMessage: 'The image is empty (0 bytes)' });
  const format = sniffImageType(bytes);
  if (format === 'svg') throw new AppError('UNSUPPORTED_MEDIA_TYPE', { publicMessage: 'SVG images are not accepted: send JPEG, PNG, WebP, GIF, TIFF or AVIF' });
  if (format === null) throw new AppError('UNSUPPORTED_MEDIA_TYPE', { detail: 'unrecognised magic number' });

  const pipeline = (ignoreIcc = false) =>
    sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'truncated', pages: 1, sequentialRead: true, ignoreIcc }).rotate();

  let meta: Pick<Metadata, 'width' | 'height' | 'pageHeight' | 'orientation' | 'channels' | 'depth'>;
  const jpeg = format === 'jpeg' ? readJpegHeader(bytes) : null;
  // A JPEG has no alpha: CMYK decodes like YCbCr.
  if (jpeg) meta = { ...jpeg, channels: jpeg.components === 1 ? 1 : 3, depth: 'uchar' };
  else {
    try {
      meta = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata();
    } catch (err) {
      throw new AppError('UNDECODABLE_IMAGE', { detail: `metadata: ${(err as Error).message}`, cause: err });
    }
  }
  if (!meta.width || !meta.height) throw new AppError('UNDECODABLE_IMAGE', { detail: 'no dimensions in header' });
  // One frame only: an animated GIF/WebP reports the stacked height of all frames in pageHeight terms.
  const frameHeight = meta.pageHeight ?? meta.height;
  if (meta.width * frameHeight > limits.maxPixels) {
    throw new AppError('IMAGE_TOO_LARGE', {
      publicMessage: `Image is ${meta.width}x${frameHeight} pixels; the limit is ${limits.maxPixels} pixels`,
    });
  }
  const decodeBytes = decodeMemoryEstimate({ rowWidth: meta.width, pixels: meta.width * frameHeight, channels: meta.channels ?? 4, bytesPerSample: bytesPerSample(meta.depth) });
  const budget = limits.budget;
  if (budget && decodeBytes > budget.capacityBytes) {
    const mb = (b: number) => Math.ceil(b / 1024 ** 2).toLocaleString('en-US');
    throw new AppError('IMAGE_TOO_LARGE', {
      publicMessage: `Decoding this ${meta.width}x${frameHeight} image needs about ${mb(decodeBytes)} MiB (its rows are ${meta.width} pixels wide); the limit is ${mb(budget.capacityBytes)} MiB (CVSERVE_DECODE_MEMORY_BYTES)`,
    });
  }
  const decoding = <T>(work: () => Promise<T>): Promise<T> => (budget ? budget.hold(decodeBytes, limits.signal, work) : work());
  const swapped = (meta.orientation ?? 1) >= 5;
  const width = swapped ? frameHeight : meta.width;
  const height = swapped ? meta.width : frameHeight;

  // libjpeg takes a JPEG that needs nothing but decoding: upright, gray or YCbCr/RGB; for rgb(), no
  // ICC profile to apply either. Anything else, or anything libjpeg refuses, goes to sharp.
  const libjpeg = (limits.jpegDecoder ?? 'libjpeg') === 'libjpeg' && jpeg !== null && plainJpeg(jpeg) && jpegAddon() !== null;
  const decode = (asStored: boolean) =>
    decoding(() => (libjpeg && (asStored || !jpeg.icc) ? decodeJpegOrSharp(bytes, jpeg, () => pipeline(asStored)) : decodeRgb(pipeline(asStored))));

  let decoded: Promise<RawImage> | undefined;
  let decodedAsStored: Promise<RawImage> | undefined;
  return {
    bytes,
    format,
    decodableByLibjpeg: libjpeg,
    width,
    height,
    decodeBytes,
    decoding,
    pipeline: () => pipeline(),
    rgb() {
      decoded ??= decode(false);
      return decoded;
    },
    analysisPipeline: () => pipeline(true),
    analysisRgb() {
      decodedAsStored ??= decode(true);
      return decodedAsStored;
    },
    analysisRgbIfDecoded: () => decodedAsStored,
    takeAnalysisRgb() {
      const taken = decodedAsStored ?? decode(true);
      decodedAsStored = undefined;
      return taken;
    },
  };
}

function plainJpeg(header: JpegHeader): boolean {
  return header.orientation === 1 && (header.components === 1 || header.components === 3);
}

async function decodeJpegOrSharp(bytes: Buffer, header: JpegHeader, fallback: () => Sharp): Promise<RawImage> {
  return (await decodeJpegRgb(bytes, header.width, header.height)) ?? decodeRgb(fallback());
}

/** Runs a sharp pipeline to raw RGB, mapping decoder failures to 422. */
export async function decodeRgb(pipeline: Sharp): Promise<RawImage> {
  try {
    const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, channels: info.channels as 3 };
  } catch (err) {
    throw decodeError(err);
  }
}

export function decodeError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const message = (err as Error)?.message ?? String(err);
  if (/pixel limit/i.test(message)) return new AppError('IMAGE_TOO_LARGE', { detail: message, cause: err });
  return new AppError('UNDECODABLE_IMAGE', { detail: message, cause: err });
}
