import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';

/**
 * Two promises of the README's DeepStack table, with a stand-in face detector that reports exactly
 * what it is told to: EXIF orientation is applied on /v1 (DeepStack ignores it), and corners are
 * rounded (CodeProject.AI truncates).
 */

/** The red square's box in the decoded pixels the resource gets, or a fixed fractional box. */
let answer: 'red square' | number[] = 'red square';

const face: AnyResource = {
  name: 'facedetection',
  summary: 'stand-in: finds the red square',
  params: z.object({}).passthrough(),
  output: { kind: 'json', schema: z.object({}).passthrough() },
  async init() {},
  status: () => ({ ready: true }),
  async run(input) {
    if (answer !== 'red square') return { kind: 'json', body: { status: 'ok', result: [{ box: answer, score: 0.9 }] } };
    const { data, width, height, channels } = await input.rgb();
    let [x1, y1, x2, y2] = [width, height, -1, -1];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * channels;
        if (data[i]! > 200 && data[i + 1]! < 80 && data[i + 2]! < 80) [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x + 1), Math.max(y2, y + 1)];
      }
    }
    return { kind: 'json', body: { status: 'ok', result: x2 < 0 ? [] : [{ box: [x1, y1, x2, y2], score: 0.9 }], width, height } };
  },
  async close() {},
};

describe('DeepStack dialect: README promises', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({}, { resources: [face] }, { waitForWorkers: false });
  });
  after(() => svc?.close());

  it('applies EXIF orientation: a photo stored sideways (orientation 6) is answered in the pixels people see', async () => {
    answer = 'red square';
    // As displayed: 120x80, a red 20x20 square at (10, 10)-(30, 30) on grey.
    const shown = await sharp({ create: { width: 120, height: 80, channels: 3, background: '#808080' } })
      .composite([{ input: { create: { width: 20, height: 20, channels: 3, background: '#ff0000' } }, left: 10, top: 10 }])
      .png()
      .toBuffer();
    // Stored turned a quarter anticlockwise, with orientation 6 ("rotate 90° clockwise to show").
    const stored = await sharp(shown).rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 100 }).toBuffer();
    const meta = await sharp(stored).metadata();
    assert.deepEqual([meta.width, meta.height, meta.orientation], [80, 120, 6]);
    const res = await request(svc.app).post('/v1/vision/face').attach('image', stored, 'sideways.jpg');
    assert.equal(res.status, 200, brief(res));
    assert.equal(res.body.count, 1);
    const { x_min, y_min, x_max, y_max } = res.body.predictions[0] as Record<string, number>;
    // JPEG blurs the square's edge by a pixel or so.
    for (const [got, want] of [
      [x_min, 10],
      [y_min, 10],
      [x_max, 30],
      [y_max, 30],
    ] as const) {
      assert.ok(Math.abs(got - want) <= 2, `box ${JSON.stringify(res.body.predictions[0])}: the displayed (10,10)-(30,30)`);
    }
  });

  it('rounds corners to the nearest pixel (not truncated)', async () => {
    answer = [10.5, 20.4, 30.6, 40.49];
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer();
    const res = await request(svc.app).post('/v1/vision/face').attach('image', png, 'a.png');
    assert.equal(res.status, 200, brief(res));
    assert.deepEqual(res.body.predictions, [{ confidence: 0.9, x_min: 11, y_min: 20, x_max: 31, y_max: 40 }]);
  });
});
