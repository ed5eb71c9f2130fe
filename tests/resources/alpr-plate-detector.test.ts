import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createAlprResource, type AlprResource } from '../../src/resources/alpr.js';
import { loadManifest, parseManifest } from '../../src/models/manifest.js';
import { parseParams } from '../../src/resources/validate.js';
import { constant, encodeModel } from '../engines/onnx-graph.js';
import { entryFor, imageInput, onnxEngines, runContext, silentLog, type TestEngines } from '../engines/onnx-fixtures.js';
import { placePlate, plateQuad, renderPlate } from '../helpers/plates.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * /alpr with a dedicated plate detector: any manifest detector with a plate class, named in
 * routes["alpr-plates"]. The detector here is an SSD-style graph of Constant nodes (built by the
 * test), so where it "finds" a plate is known: around one of two plates in the photo. Only that
 * one is read: the plate detector, not text detection, chose what to read.
 */
const W = 600, H = 300;
// Normalized [ymin, xmin, ymax, xmax] of the left plate (centre 150,150, 200x100) and a low-score box elsewhere.
const boxes = [
  [125 / H, 45 / W, 175 / H, 255 / W],
  [0, 0, 0.1, 0.1],
];
const scores = [0.92, 0.1];
const classes = [1, 1];

function plateSsd(): Uint8Array {
  return encodeModel({
    nodes: [
      constant('detection_boxes', { dims: [1, 2, 4], type: 'float32', values: boxes.flat() }),
      constant('detection_scores', { dims: [1, 2], type: 'float32', values: scores }),
      constant('detection_classes', { dims: [1, 2], type: 'float32', values: classes }),
    ],
    inputs: [{ name: 'image_tensor', type: 'uint8', dims: [1, 300, 300, 3] }],
    outputs: [
      { name: 'detection_boxes', type: 'float32', dims: [1, 2, 4] },
      { name: 'detection_scores', type: 'float32', dims: [1, 2] },
      { name: 'detection_classes', type: 'float32', dims: [1, 2] },
    ],
  });
}

describe('/alpr with a plate detector from the manifest (routes["alpr-plates"])', () => {
  let env: TestEngines;
  let alpr: AlprResource;
  let dir: string;
  let photo: Buffer;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-plates-'));
    const model = plateSsd();
    await writeFile(path.join(dir, 'plates.onnx'), model);
    await writeFile(path.join(dir, 'plate-labels.txt'), 'licence_plate\n');
    const builtin = loadManifest();
    const text = ['ch_PP-OCRv4_det_infer.onnx', 'ch_PP-OCRv4_rec_infer.onnx', 'ppocr_keys_v1.txt'];
    const manifest = parseManifest({
      version: 1,
      files: [...builtin.files.filter((f) => text.includes(f.file)), entryFor('plates.onnx', model, 'onnx'), entryFor('plate-labels.txt', 'licence_plate\n', 'labels')],
      models: [
        ...builtin.models.filter((m) => m.task === 'text-detect' || m.task === 'text-recognize'),
        {
          id: 'plates-test',
          file: 'plates.onnx',
          task: 'detect',
          labels: 'plate-labels.txt',
          input: { name: 'image_tensor', shape: [1, 300, 300, 3], layout: 'NHWC', dtype: 'uint8' },
          preprocess: { resize: { mode: 'stretch' }, channels: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
          decoder: { family: 'ssd', outputs: { boxes: 'detection_boxes', scores: 'detection_scores', classes: 'detection_classes' }, boxFormat: 'yxyx', normalized: true, classOffset: -1, nmsIou: null },
        },
      ],
      routes: { 'ocr-detect': 'ppocr-v4-det', 'ocr-recognize': 'ppocr-v4-rec', 'alpr-plates': 'plates-test' },
    });
    env = onnxEngines({ dir, manifest });
    alpr = createAlprResource();
    await alpr.init({ config: env.config, engines: env.engines, log: silentLog });
    await alpr.settled();
    assert.deepEqual(alpr.status(), { ready: true });
    const background = await sharp({ create: { width: W, height: H, channels: 3, background: '#6b7a5a' } }).jpeg().toBuffer();
    const left = await renderPlate('AB-123-CD', 'eu', 520);
    const right = await renderPlate('XY-789-ZA', 'eu', 520);
    const once = await placePlate(background, left, { quad: plateQuad(150, 150, 200, left.width / left.height, 0, 0) });
    photo = await placePlate(once, right, { quad: plateQuad(450, 150, 200, right.width / right.height, 0, 0) });
  });
  after(async () => {
    await alpr?.close();
    await env?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the plate the detector found is read; the other plate, which it did not find, is not', async () => {
    const answer = await alpr.run(await imageInput(photo), parseParams(alpr.params, { region: 'eu' }), runContext());
    const result = (answer.kind === 'json' ? answer.body.result : []) as { plate: string; box: number[]; vehicle?: unknown }[];
    assert.deepEqual(result.map((r) => r.plate), ['AB123CD'], JSON.stringify(answer.kind === "json" && answer.body));
    // The box is the detector's, grown by 5% / 10%: x 45..255 → 34.5..265.5, y 125..175 → 120..180.
    assert.deepEqual(result[0]!.box, [34, 120, 266, 180]);
    assert.equal(result[0]!.vehicle, undefined, 'no vehicle detector in this manifest');
  });
});
