import zlib from 'node:zlib';
import sharp from 'sharp';

/**
 * Real images of hostile shapes (1×N, N×1, N×N at the pixel limit), made by the tests: a flat grey
 * PNG is written directly (filter byte + pixels per row, deflated), which takes milliseconds where
 * libvips writes a 1×33554432 PNG row by row in half a minute; the other formats go through sharp
 * up to the largest side each can hold.
 */

/** One PNG chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** PNG colour type by channel count: gray, gray + alpha, RGB, RGBA. */
const PNG_COLOUR_TYPE = { 1: 0, 2: 4, 3: 2, 4: 6 } as const;

/** A valid, fully decodable flat grey PNG of width × height: RGB 8-bit unless asked otherwise. */
export function flatPng(width: number, height: number, layout: { channels?: 1 | 2 | 3 | 4; bitDepth?: 8 | 16 } = {}): Buffer {
  const { channels = 3, bitDepth = 8 } = layout;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([bitDepth, PNG_COLOUR_TYPE[channels], 0, 0, 0], 8);
  const row = Buffer.alloc(1 + (channels * bitDepth / 8) * width, 0x88);
  row[0] = 0; // filter: none
  // Buffer.alloc repeats the row: the raw scanlines (134 MB for 1×33554432) exist only while deflating.
  const idat = zlib.deflateSync(Buffer.alloc(row.length * height, row), { level: 1 });
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Largest side each format's encoder (libvips) writes. */
export const MAX_SIDE = { jpeg: 65_500, webp: 16_383, gif: 65_535, tiff: 1_000_000, avif: 16_384, png: 1 << 30 } as const;
export type ShapeFormat = keyof typeof MAX_SIDE;

/** A flat grey image of width × height in `format` (PNG written directly, the others by sharp). */
export async function flatImage(width: number, height: number, format: ShapeFormat): Promise<Buffer> {
  if (format === 'png') return flatPng(width, height);
  const base = sharp({ create: { width, height, channels: 3, background: '#888' }, limitInputPixels: false });
  switch (format) {
    case 'tiff':
      return base.tiff({ compression: 'deflate' }).toBuffer();
    case 'avif':
      return base.avif({ effort: 0 }).toBuffer();
    default:
      return base.toFormat(format).toBuffer();
  }
}
