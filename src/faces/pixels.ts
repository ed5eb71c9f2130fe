import type { FaceBox } from '../engines/face/engine.js';
import { decodeRgb } from '../image/decode.js';
import type { ImageInput, RawImage } from '../image/types.js';

/** The pixels faces are searched in, and how to bring its boxes back to the original image. */
export interface FacePixels {
  image: RawImage;
  /** Original size over searched size, per axis (1 when not shrunk). */
  scaleX: number;
  scaleY: number;
}

/** The size faces are searched at: the image's, or fitted inside maxSide × maxSide (as sharp's `inside` fit rounds). */
export function faceSearchSize(image: { width: number; height: number }, maxSide: number): { width: number; height: number } {
  const longer = Math.max(image.width, image.height);
  if (longer <= maxSide) return { width: image.width, height: image.height };
  const r = maxSide / longer;
  return { width: Math.max(1, Math.round(image.width * r)), height: Math.max(1, Math.round(image.height * r)) };
}

/**
 * An image as the face engine should get it: EXIF orientation applied, pixel values as stored (no
 * ICC transform), and a large photo shrunk to maxSide while decoding (libvips shrink-on-load on the
 * libuv pool), so a 40 MP upload is never copied whole to the worker.
 */
export async function facePixels(input: ImageInput, maxSide: number): Promise<FacePixels> {
  const size = faceSearchSize(input, maxSide);
  if (size.width === input.width && size.height === input.height) return { image: await input.analysisRgb(), scaleX: 1, scaleY: 1 };
  const image = await input.decoding(() => decodeRgb(input.analysisPipeline().resize({ width: size.width, height: size.height, fit: 'fill' })));
  return { image, scaleX: input.width / image.width, scaleY: input.height / image.height };
}

/** A box found in the searched pixels, in the original image's pixels (rounded, clamped). */
export function originalBox(box: FaceBox, pixels: FacePixels, width: number, height: number): FaceBox {
  if (pixels.scaleX === 1 && pixels.scaleY === 1) return box;
  const x = (v: number) => Math.min(width, Math.max(0, Math.round(v * pixels.scaleX)));
  const y = (v: number) => Math.min(height, Math.max(0, Math.round(v * pixels.scaleY)));
  return [x(box[0]), y(box[1]), x(box[2]), y(box[3])];
}
