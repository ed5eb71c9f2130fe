import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../../src/errors.js';
import { createObjectDetectionResource, type ObjectDetectionResource } from '../../src/resources/object-detection.js';
import { decodeYolox, nmsPerClass } from '../../src/resources/onnx/decoders.js';
import { parseParams } from '../../src/resources/validate.js';
import { imageInput, onnxEngines, runContext, silentLog, type TestEngines } from '../engines/onnx-fixtures.js';
import { boxIoU } from '../helpers/images.js';
import { image } from '../helpers/paths.js';

type Found = { box: [number, number, number, number]; label: string; score: number };

/** MANIFEST.md §2 (BGR, thr 0.3, NMS 0.45). */
const MANIFEST_ALL: Record<string, [string, number, number[]][]> = {
  'cat_small.jpg': [
    ['cat', 0.759, [261, 372, 912, 1275]],
    ['bed', 0.592, [0, 427, 1000, 1313]],
    ['laptop', 0.363, [504, 258, 978, 749]],
    ['chair', 0.335, [0, 291, 57, 641]],
  ],
  'car.jpg': [
    ['car', 0.882, [255, 56, 1948, 1258]],
    ['car', 0.824, [2145, 599, 2369, 1334]],
    ['car', 0.815, [0, 81, 917, 813]],
    ['car', 0.575, [2277, 204, 2371, 504]],
    ['truck', 0.357, [1, 76, 946, 872]],
  ],
};

describe('/catdetection (YOLOX-nano) at resource level', () => {
  let env: TestEngines;
  let detect: ObjectDetectionResource;

  before(async () => {
    env = onnxEngines();
    detect = createObjectDetectionResource();
    await detect.init({ config: env.config, engines: env.engines, log: silentLog });
    assert.deepEqual(detect.status(), { ready: true });
  });
  after(() => env.close());

  const run = async (file: string, fields: Record<string, unknown> = {}) => {
    const params = parseParams(detect.params, fields);
    const result = await detect.run(await imageInput(image(file)), params, runContext());
    assert.ok(result.kind === 'json');
    assert.ok(detect.output.schema.safeParse(result.body).success, 'matches the declared schema');
    return { found: (result.body as { result: Found[] }).result, boxes: result.boxes! };
  };

  test('cat_small.jpg, defaults (cats only): the MANIFEST cat box with IoU ≥ 0.9', async () => {
    const { found, boxes } = await run('cat_small.jpg');
    assert.equal(found.length, 1);
    assert.equal(found[0]!.label, 'cat');
    assert.ok(boxIoU(found[0]!.box, [261, 372, 912, 1275]) >= 0.9, JSON.stringify(found[0]));
    assert.ok(Math.abs(found[0]!.score - 0.759) < 0.01);
    assert.ok(found[0]!.box.every(Number.isInteger));
    assert.deepEqual(boxes, [{ box: found[0]!.box, label: `cat ${found[0]!.score.toFixed(2)}` }]);
  });

  for (const [file, expected] of Object.entries(MANIFEST_ALL)) {
    test(`${file}, labels=all: the MANIFEST's detections`, async () => {
      const { found } = await run(file, { labels: 'all' });
      assert.deepEqual(found.map((f) => f.label), expected.map((e) => e[0]));
      found.forEach((f, i) => {
        assert.ok(Math.abs(f.score - expected[i]![1]) < 0.01, `${f.label} ${f.score}`);
        assert.ok(boxIoU(f.box, expected[i]![2]) >= 0.9, `${f.label} ${JSON.stringify(f.box)}`);
      });
    });
  }

  test('test_face_processing.jpg, labels=person: the 17 people', async () => {
    const { found } = await run('test_face_processing.jpg', { labels: 'person' });
    assert.equal(found.length, 17);
    assert.ok(boxIoU(found[0]!.box, [477, 164, 608, 482]) >= 0.9);
  });

  test('labels and threshold choose what is reported', async () => {
    assert.deepEqual((await run('car.jpg')).found, [], 'no cats in car.jpg');
    assert.deepEqual((await run('car.jpg', { labels: 'dog,cat' })).found, []);
    assert.deepEqual((await run('car.jpg', { labels: 'truck' })).found.map((f) => f.label), ['truck']);
    const strict = (await run('car.jpg', { labels: 'all', threshold: '0.6' })).found;
    assert.deepEqual(strict.map((f) => f.label), ['car', 'car', 'car']);
    strict.forEach((f, i) => assert.ok(Math.abs(f.score - [0.882, 0.824, 0.815][i]!) < 0.01, `${f.score}`));
  });

  test('an unknown label is a 400 naming it', async () => {
    await assert.rejects(run('car.jpg', { labels: 'cat,unicorn' }), (err: unknown) => {
      assert.ok(err instanceof AppError && err.status === 400);
      assert.match(err.publicMessage, /unknown class name\(s\) "unicorn"/);
      return true;
    });
  });

  test('draw and format are parameters of the route', () => {
    assert.deepEqual(parseParams(detect.params, { draw: 'true', format: 'png' }), { labels: ['cat'], threshold: 0.3, draw: true, format: 'png' });
    assert.equal(detect.output.drawable, true);
  });
});

describe('YOLOX grid decoding and NMS (synthetic output)', () => {
  test('decodes centre, size, objectness × class on a 64x64 input with strides 32 (4 anchors)', () => {
    // Rows: [tx, ty, tw, th, obj, cls0, cls1]; anchor order (gx, gy) = (0,0), (1,0), (0,1), (1,1).
    const rows = [
      [0.5, 0.5, Math.log(0.5), Math.log(0.25), 0.9, 0.1, 0.8], // centre (16, 16), 16x8, class 1, score 0.72
      [0, 0, 0, 0, 0.1, 0.9, 0.1], // objectness too low
      [0, 0, 0, 0, 0.5, 0.5, 0.2], // score 0.25 < 0.3
      [0.25, 0.75, 0, 0, 0.8, 0.6, 0.1], // centre (40, 56), 32x32, class 0, score 0.48
    ];
    const data = Float32Array.from(rows.flat());
    const transform = { scaleX: 0.5, scaleY: 0.5, offsetX: 0, offsetY: 0, source: { width: 128, height: 100 } };
    const found = decodeYolox({ output: { data, dims: [1, 4, 7] } }, { output: 'output', strides: [32], activation: 'none' }, { width: 64, height: 64 }, transform, { threshold: 0.3 });
    assert.deepEqual(found.map((d) => [d.classId, +d.score.toFixed(4), d.box.map((v) => +v.toFixed(3))]), [
      [1, 0.72, [16, 24, 48, 40]],
      [0, 0.48, [48, 80, 112, 100]], // y2 = 144 clipped to the image height 100
    ]);
    const catsOnly = decodeYolox({ output: { data, dims: [1, 4, 7] } }, { output: 'output', strides: [32], activation: 'none' }, { width: 64, height: 64 }, transform, { threshold: 0.3, classes: new Set([0]) });
    assert.deepEqual(catsOnly.map((d) => d.classId), [0]);
    assert.throws(() => decodeYolox({ output: { data, dims: [1, 4, 7] } }, { output: 'output', strides: [16], activation: 'none' }, { width: 64, height: 64 }, transform, { threshold: 0.3 }), /4 anchors, strides 16 on 64x64 give 16/);
  });

  test('NMS suppresses overlaps within a class only', () => {
    const d = (classId: number, score: number, box: [number, number, number, number]) => ({ classId, score, box });
    const kept = nmsPerClass(
      [d(0, 0.6, [0, 0, 10, 10]), d(0, 0.9, [1, 0, 11, 10]), d(1, 0.5, [0, 0, 10, 10]), d(0, 0.4, [20, 20, 30, 30])],
      0.45,
    );
    assert.deepEqual(kept.map((k) => [k.classId, k.score]), [[0, 0.9], [1, 0.5], [0, 0.4]]);
  });
});
