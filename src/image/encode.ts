import sharp from 'sharp';
import { AppError } from '../errors.js';
import { turboJpeg } from './jpeg-turbo.js';
import type { OutputFormat, RawImage } from './types.js';

/**
 * Quality 90 without optimised Huffman tables: the second pass that optimiseCoding costs is over
 * half the encode time (a 2372x1334 edge map: 40 → 16 ms CPU) for about 10% more bytes, which
 * is the better trade for a service whose cores are the scarce thing.
 */
export const JPEG_OPTIONS = { quality: 90, optimiseCoding: false } as const;

export const MIME_TYPES: Record<OutputFormat, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

/** Longest side each format can hold (libjpeg: 65500, WebP: 16383). */
const MAX_SIDE: Record<OutputFormat, number> = { jpeg: 65_500, png: 0x7fffffff, webp: 16_383 };

/** Refuses (413) an answer the format cannot hold, e.g. a 65535x2 edge map as JPEG, instead of failing with 500. */
export function assertEncodable(width: number, height: number, format: OutputFormat): void {
  const max = MAX_SIDE[format];
  if (width > max || height > max) {
    throw new AppError('OUTPUT_TOO_LARGE', {
      publicMessage: `A ${format.toUpperCase()} image has at most ${max} pixels on a side; the answer is ${width}x${height}: ask for format=png`,
    });
  }
}

/**
 * Encodes raw pixels. JPEG quality 90 (libjpeg-turbo where it loads, else sharp) and fast PNG
 * compression: the service answers many images.
 */
export async function encodeImage(image: RawImage, format: OutputFormat): Promise<Buffer> {
  assertEncodable(image.width, image.height, format);
  if (format === 'jpeg') {
    const turbo = await turboJpeg(image, JPEG_OPTIONS.quality);
    if (turbo) return turbo;
  }
  const s = sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } });
  switch (format) {
    case 'jpeg':
      return s.jpeg(JPEG_OPTIONS).toBuffer();
    case 'png':
      return s.png({ compressionLevel: 3 }).toBuffer();
    case 'webp':
      return s.webp({ quality: 90 }).toBuffer();
  }
}
