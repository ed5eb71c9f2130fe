import sharp from 'sharp';
import type { OutputFormat, RawImage } from './types.js';

export const MIME_TYPES: Record<OutputFormat, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

/** Encodes raw pixels. JPEG quality 90 and fast PNG compression: the service answers many images. */
export async function encodeImage(image: RawImage, format: OutputFormat): Promise<Buffer> {
  const s = sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } });
  switch (format) {
    case 'jpeg':
      return s.jpeg({ quality: 90 }).toBuffer();
    case 'png':
      return s.png({ compressionLevel: 3 }).toBuffer();
    case 'webp':
      return s.webp({ quality: 90 }).toBuffer();
  }
}
