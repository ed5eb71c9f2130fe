import { readFileSync } from 'node:fs';
import path from 'node:path';
import { frigateFrame, pythonMultipart } from '../scripts/deepstack-clients.js';
import type { Scenario } from './scenario.js';

/**
 * The DeepStack rows: `/v1/vision/detection` as Frigate calls it, a 320x320 JPEG frame of the
 * detector input (car.jpg's centre, PIL's quality 75) with only `api_key` in the form, at
 * concurrency 1 (Frigate's detector process sends one frame at a time, with a 100 ms timeout) and 4.
 * The detector's kernel (YOLOX-nano session.run) bounds them, as it bounds /catdetection.
 */

export const DEEPSTACK_FRAME = 'frigate_frame_320.jpg';
/** Frigate with `model: {width: 416, height: 416}`: the frame is already YOLOX-nano's input size, nothing is resized. */
export const DEEPSTACK_FRAME_416 = 'frigate_frame_416.jpg';

/** The frames, made once from the shared car.jpg. */
export async function deepstackFrames(imagesDir: string): Promise<Map<string, Buffer>> {
  const car = readFileSync(path.join(imagesDir, 'car.jpg'));
  return new Map([
    [DEEPSTACK_FRAME, await frigateFrame(car, 320)],
    [DEEPSTACK_FRAME_416, await frigateFrame(car, 416)],
  ]);
}

/** Frigate's request body: `files={"image": jpeg}, data={"api_key": ""}` as Python requests encodes it. */
export function frigateBody(frame: Buffer): { body: Buffer; contentType: string } {
  return pythonMultipart([
    { name: 'api_key', value: '' },
    { name: 'image', file: frame, filename: 'image' },
  ]);
}

/**
 * The DeepStack rows, each after the native /catdetection on the same frame (the dialect's own cost
 * is the difference), then the same with a 416x416 frame.
 */
export function deepstackScenarios(): Scenario[] {
  const deepstack = (frame: string, size: number, c: number): Scenario => ({
    id: `deepstack frame${size} c${c}`,
    route: '/v1/vision/detection',
    method: 'POST',
    image: frame,
    connections: c,
    durationFactor: 1,
    kernel: 'catdetection',
    pool: 'onnx',
    form: 'frigate',
  });
  return [
    ...[1, 4].flatMap((c): Scenario[] => [
      { id: `catdetection frame320 c${c}`, route: '/catdetection', method: 'POST', image: DEEPSTACK_FRAME, connections: c, durationFactor: 1, kernel: 'catdetection' },
      deepstack(DEEPSTACK_FRAME, 320, c),
    ]),
    ...[1, 4].map((c) => deepstack(DEEPSTACK_FRAME_416, 416, c)),
  ];
}
