import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import type { Box } from '../../src/engines/opencv/protocol.js';
import type { RawImage } from '../../src/image/types.js';
import { boxIoU } from '../helpers/images.js';
import { image, MODELS_DIR, reference as referenceFile } from '../helpers/paths.js';

/** Shared fixtures for the Haar tests: the native-OpenCV reference, box matching. */

export const modelsDir = MODELS_DIR;

export const FACE_CASCADE = 'haarcascade_frontalface_alt.xml';
export const CAT_CASCADE = 'haarcascade_frontalcatface_extended.xml';

export interface ReferenceImage {
  size: [number, number];
  faces: Box[];
  catfaces: Box[];
  canny_edge_pixels: number;
}

/** Boxes native OpenCV 4.6 found with detectMultiScale(1.1, 5, (25, 25)) on BGR2GRAY. */
export const reference = JSON.parse(readFileSync(referenceFile('opencv-native.json'), 'utf8')) as {
  images: Record<string, ReferenceImage>;
};

export const imageBytes = (name: string) => readFileSync(image(name));

/** The image as RGB, decoded the way the service decodes it. */
export async function rgbOf(name: string): Promise<RawImage> {
  const { data, info } = await sharp(image(name)).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: 3 };
}

export const iou = (a: Box, b: Box): number => boxIoU(a, b);

/** Greedy one-to-one matching: pairs in order of decreasing IoU. Returns the IoU of each expected box (0 if unmatched). */
export function matchBoxes(found: Box[], expected: Box[]): number[] {
  const pairs: [number, number, number][] = [];
  found.forEach((f, i) => expected.forEach((e, j) => pairs.push([iou(f, e), i, j])));
  pairs.sort((a, b) => b[0] - a[0]);
  const usedFound = new Set<number>();
  const best = expected.map(() => 0);
  const usedExpected = new Set<number>();
  for (const [v, i, j] of pairs) {
    if (v <= 0 || usedFound.has(i) || usedExpected.has(j)) continue;
    usedFound.add(i);
    usedExpected.add(j);
    best[j] = v;
  }
  return best;
}

/** Same number of boxes, and every expected box matched one-to-one with IoU ≥ minIoU. */
export function assertSameBoxes(found: Box[], expected: Box[], minIoU = 0.9): void {
  assert.equal(found.length, expected.length, `expected ${expected.length} boxes, got ${found.length}: ${JSON.stringify(found)}`);
  const ious = matchBoxes(found, expected);
  ious.forEach((v, j) => assert.ok(v >= minIoU, `box ${JSON.stringify(expected[j])} matched with IoU ${v.toFixed(3)} < ${minIoU}; found ${JSON.stringify(found)}`));
}

export function assertValidBox(b: Box, width: number, height: number): void {
  assert.equal(b.length, 4);
  for (const v of b) assert.ok(Number.isInteger(v), `box ${JSON.stringify(b)} has a non-integer`);
  assert.ok(b[0] >= 0 && b[1] >= 0 && b[2] <= width && b[3] <= height, `box ${JSON.stringify(b)} outside ${width}x${height}`);
  assert.ok(b[0] < b[2] && b[1] < b[3], `box ${JSON.stringify(b)} is empty`);
}
