import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { deepstackFrames, deepstackScenarios } from './deepstack.js';
import type { Scenario } from './scenario.js';
import { textPhotos, textScenarios } from './text.js';

export type { Scenario } from './scenario.js';

export interface BenchImages {
  /** file name → bytes */
  bytes: Map<string, Buffer>;
}

const IMAGES = { face: 'test_face_processing.jpg', car: 'car.jpg', cat: 'cat_small.jpg', cat300: 'cat_small_300.jpg', tiny: 'face_32x24.jpg' } as const;

/** The photos from ../shared/images, plus cat_small shrunk to 300 px wide for /upscale (its output stays bounded). */
export async function loadImages(imagesDir: string): Promise<BenchImages> {
  const bytes = new Map<string, Buffer>();
  for (const name of [IMAGES.face, IMAGES.car, IMAGES.cat]) bytes.set(name, readFileSync(path.join(imagesDir, name)));
  bytes.set(IMAGES.cat300, await sharp(bytes.get(IMAGES.cat)!).resize({ width: 300 }).jpeg({ quality: 90 }).toBuffer());
  // The fixed cost of a request (parsing, hops between threads, answer encoding) with almost no pixels.
  bytes.set(IMAGES.tiny, await sharp(bytes.get(IMAGES.face)!).resize(32, 24, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer());
  for (const [name, frame] of await deepstackFrames(imagesDir)) bytes.set(name, frame);
  for (const [name, photo] of await textPhotos(imagesDir)) bytes.set(name, photo);
  return { bytes };
}

const BOUNDARY = '----cvservebench7MA4YWxkTrZu0gW';

/** One multipart/form-data body with the image in field "image", built once and sent by every request. */
export function multipartBody(fileName: string, bytes: Buffer): { body: Buffer; contentType: string } {
  const head = Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="${fileName}"\r\nContent-Type: image/jpeg\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  return { body: Buffer.concat([head, bytes, tail]), contentType: `multipart/form-data; boundary=${BOUNDARY}` };
}

function imageRows(route: string, short: string, images: [string, string][], opts: { kernel?: (img: string) => string; factor?: (img: string) => number } = {}): Scenario[] {
  const rows: Scenario[] = [];
  for (const [label, file] of images) {
    for (const c of [1, 8]) {
      rows.push({
        id: `${short} ${label} c${c}`,
        route,
        method: 'POST',
        image: file,
        connections: c,
        durationFactor: opts.factor?.(label) ?? 1,
        kernel: opts.kernel?.(label),
      });
    }
  }
  return rows;
}

const FACE_AND_CAR: [string, string][] = [
  ['face', IMAGES.face],
  ['car', IMAGES.car],
];

/** Every scenario, in run order. The peer has /ping, /canny, /detect, /predict; the last two rows are cvserve's own. */
export function allScenarios(): Scenario[] {
  return [
    { id: 'ping c8', route: '/ping', method: 'GET', connections: 8, durationFactor: 1 },
    ...imageRows('/canny', 'canny', FACE_AND_CAR, { kernel: (l) => `canny ${l}` }),
    { id: 'canny tiny c8', route: '/canny', method: 'POST', image: IMAGES.tiny, connections: 8, durationFactor: 1 },
    // A full-size car.jpg detection takes seconds: give it time to finish a few.
    ...imageRows('/detect', 'detect', FACE_AND_CAR, { kernel: (l) => `detect ${l}`, factor: (l) => (l === 'car' ? 3 : 1) }),
    ...imageRows('/catfacedetection', 'catfacedetection', [['cat', IMAGES.cat]]),
    ...imageRows('/predict', 'predict', FACE_AND_CAR, { kernel: () => 'predict' }),
    ...imageRows('/catdetection', 'catdetection', [['cat', IMAGES.cat]], { kernel: () => 'catdetection' }),
    ...imageRows('/upscale', 'upscale', [['cat300', IMAGES.cat300]], { kernel: () => 'upscale cat300' }),
    ...deepstackScenarios(),
    ...textScenarios(),
  ];
}
