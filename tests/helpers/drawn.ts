import sharp from 'sharp';
import { strokeWidthFor } from '../../src/image/draw.js';

/** An image as raw RGB, for comparing pixels. */
async function rgb(bytes: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** A pixel counts as drawn on when some channel moved by more than this (JPEG re-encoding moves a few levels). */
const DRAWN_DIFFERENCE = 48;

/**
 * For each box ([x1, y1, x2, y2] in the image's pixels), the fraction of the pixels along its outline
 * (the columns and rows the stroke fully covers, just inside the box) that differ from the input:
 * near 1 when the box was drawn, near 0 when the input came back unchanged.
 */
export async function outlineChange(input: Buffer, drawn: Buffer, boxes: readonly (readonly number[])[]): Promise<number[]> {
  const a = await rgb(input);
  const b = await rgb(drawn);
  if (a.width !== b.width || a.height !== b.height) throw new Error(`drawn image is ${b.width}x${b.height}, input ${a.width}x${a.height}`);
  const sw = strokeWidthFor(a.width, a.height);
  const changed = (x: number, y: number) => {
    const i = (y * a.width + x) * 3;
    return Math.max(Math.abs(a.data[i]! - b.data[i]!), Math.abs(a.data[i + 1]! - b.data[i + 1]!), Math.abs(a.data[i + 2]! - b.data[i + 2]!)) > DRAWN_DIFFERENCE;
  };
  return boxes.map((box) => {
    const x1 = Math.max(0, Math.ceil(box[0]!));
    const y1 = Math.max(0, Math.ceil(box[1]!));
    const x2 = Math.min(a.width, Math.floor(box[2]!)) - 1;
    const y2 = Math.min(a.height, Math.floor(box[3]!)) - 1;
    let seen = 0;
    let moved = 0;
    const count = (x: number, y: number) => {
      seen++;
      if (changed(x, y)) moved++;
    };
    for (let x = x1 + sw; x <= x2 - sw; x++) {
      count(x, y1);
      count(x, y2);
    }
    for (let y = y1 + sw; y <= y2 - sw; y++) {
      count(x1, y);
      count(x2, y);
    }
    return seen === 0 ? 0 : moved / seen;
  });
}
