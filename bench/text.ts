import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Scenario } from './scenario.js';

/**
 * The /alpr and /ocr rows: car.jpg at 960 px wide with a US plate drawn on it (DejaVu, as the
 * tests render them; no real plate photo with ground truth is at hand), read at concurrency 1:
 * one photo at a time, so CPU ms/req is the CPU one photo costs (text detection at 960, every box
 * recognized, YOLOX for the vehicle on /alpr).
 */
export const PLATE_PHOTO = 'car_plate_960.jpg';

export async function textPhotos(imagesDir: string): Promise<Map<string, Buffer>> {
  const car = await sharp(readFileSync(path.join(imagesDir, 'car.jpg'))).resize({ width: 960 }).toBuffer({ resolveWithObject: true });
  const { width, height } = car.info;
  const plate =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<g transform="translate(${Math.round(width / 2 - 80)},${Math.round(height * 0.62)})">` +
    `<rect width="160" height="80" rx="7" fill="#f3f3ee" stroke="#333" stroke-width="2"/>` +
    `<text x="80" y="20" font-family="DejaVu Serif" font-style="italic" font-size="13" fill="#b3121b" text-anchor="middle">California</text>` +
    `<text x="80" y="58" font-family="DejaVu Sans Condensed" font-weight="bold" font-size="32" fill="#1b2a6b" text-anchor="middle">7ABC123</text></g></svg>`;
  const photo = await sharp(car.data).composite([{ input: Buffer.from(plate) }]).jpeg({ quality: 85 }).toBuffer();
  return new Map([[PLATE_PHOTO, photo]]);
}

export function textScenarios(): Scenario[] {
  return [
    { id: 'alpr car960 c1', route: '/alpr', method: 'POST', image: PLATE_PHOTO, connections: 1, durationFactor: 2, pool: 'onnx' },
    { id: 'ocr car960 c1', route: '/ocr', method: 'POST', image: PLATE_PHOTO, connections: 1, durationFactor: 2, pool: 'onnx' },
    { id: 'deepstack alpr car960 c1', route: '/v1/vision/alpr', method: 'POST', image: PLATE_PHOTO, connections: 1, durationFactor: 2, pool: 'onnx' },
  ];
}
