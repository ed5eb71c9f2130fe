import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { boxIoU } from '../helpers/images.js';
import { image, MODELS_DIR } from '../helpers/paths.js';

const CAT_CLASSES = ['tabby', 'tiger cat', 'Egyptian cat', 'Siamese cat', 'Persian cat'];

describe('ONNX routes over HTTP: /predict, /catdetection, /upscale', () => {
  let svc: CvServe;

  before(async () => {
    svc = await createTestApp({ maxOutputPixels: 5_000_000 });
  });
  after(() => svc.close());

  it('/predict cat_small.jpg (multipart): a cat class first, in the Keras REST API shape', async () => {
    const res = await request(svc.app).post('/predict').attach('image', await readFile(image('cat_small.jpg')), 'cat.jpg');
    assert.equal(res.status, 200, brief(res));
    assert.equal(res.body.success, true);
    assert.equal(res.body.predictions.length, 5);
    assert.deepEqual(Object.keys(res.body.predictions[0]), ['label', 'probability']);
    assert.ok(CAT_CLASSES.includes(res.body.predictions[0].label), res.body.predictions[0].label);
  });

  it('/predict car.jpg (raw body, top=3): sports car first', async () => {
    const res = await request(svc.app).post('/predict?top=3').set('Content-Type', 'image/jpeg').send(await readFile(image('car.jpg')));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.predictions.map((p: { label: string }) => p.label), ['sports car', 'minivan', 'convertible']);
  });

  it('/predict rejects top=21 with 400', async () => {
    const res = await request(svc.app).post('/predict?top=21').set('Content-Type', 'image/jpeg').send(await readFile(image('car.jpg')));
    assert.equal(res.status, 400);
    assert.match(res.body.message, /top/);
  });

  it('/catdetection cat_small.jpg: the cat, IoU ≥ 0.9 with the MANIFEST box', async () => {
    const res = await request(svc.app).post('/catdetection').send({ imageBase64: (await readFile(image('cat_small.jpg'))).toString('base64') });
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ok');
    assert.equal(res.body.result.length, 1);
    const [cat] = res.body.result;
    assert.equal(cat.label, 'cat');
    assert.ok(boxIoU(cat.box, [261, 372, 912, 1275]) >= 0.9, JSON.stringify(cat.box));
  });

  it('/catdetection labels=all and draw=true answers the image with the boxes drawn', async () => {
    const all = await request(svc.app).post('/catdetection?labels=all').attach('image', await readFile(image('cat_small.jpg')), 'cat.jpg');
    assert.deepEqual(all.body.result.map((r: { label: string }) => r.label), ['cat', 'bed', 'laptop', 'chair']);
    const drawn = await request(svc.app).post('/catdetection?draw=true&format=png').attach('image', await readFile(image('cat_small.jpg')), 'cat.jpg');
    assert.equal(drawn.status, 200);
    assert.equal(drawn.type, 'image/png');
    const meta = await sharp(drawn.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height], [1000, 1334]);
  });

  it('/upscale: PNG in, PNG out at exactly 3x', async () => {
    const png = await sharp(image('test_face_processing.jpg')).resize(160, 120).png().toBuffer();
    const res = await request(svc.app).post('/upscale').set('Content-Type', 'image/png').send(png).buffer(true);
    assert.equal(res.status, 200);
    assert.equal(res.type, 'image/png');
    const meta = await sharp(res.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height, meta.format], [480, 360, 'png']);
  });

  it('/upscale: JSON {imageBase64} in gives JSON {imageBase64} out, in the input format', async () => {
    const jpeg = await sharp(image('car.jpg')).resize(200, 113).jpeg().toBuffer();
    const res = await request(svc.app).post('/upscale').send({ imageBase64: jpeg.toString('base64') });
    assert.equal(res.status, 200);
    assert.equal(res.type, 'application/json');
    assert.equal(res.body.format, 'jpeg');
    const meta = await sharp(Buffer.from(res.body.imageBase64, 'base64')).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 600, 339]);
  });

  it('/upscale: output over the pixel limit is a 413 with a clear message', async () => {
    const res = await request(svc.app).post('/upscale').attach('image', await readFile(image('cat_small.jpg')), 'cat.jpg');
    assert.equal(res.status, 413);
    assert.equal(res.body.code, 'OUTPUT_TOO_LARGE');
    assert.match(res.body.message, /upscaling 1000x1334 by 3 to 3000x4002 needs 12,006,000 pixels, 2\.40x the limit of 5,000,000 \(CVSERVE_MAX_OUTPUT_PIXELS\)/);
  });
});

describe('a missing model file over HTTP', () => {
  let svc: CvServe;
  let dir: string;

  before(async () => {
    // Everything but the classifier.
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-e2e-models-'));
    for (const f of ['yolox_nano.onnx', 'coco_classes.txt', 'espcn-x3.onnx', 'imagenet_classes.txt']) await copyFile(path.join(MODELS_DIR, f), path.join(dir, f));
    svc = await createTestApp({ modelsDir: dir, modelsFetch: false });
  });
  after(async () => {
    await svc.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 naming the file and the fetch command; the other routes keep working', async () => {
    const res = await request(svc.app).post('/predict').set('Content-Type', 'image/jpeg').send(await readFile(image('car.jpg')));
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'MODEL_UNAVAILABLE');
    assert.equal(res.body.message, `/predict is unavailable: mobilenetv2-12-int8.onnx missing in ${dir}; run npm run models`);
    const other = await request(svc.app).post('/catdetection?labels=car').set('Content-Type', 'image/jpeg').send(await readFile(image('car.jpg')));
    assert.equal(other.status, 200);
    assert.equal(other.body.result.length, 4);
  });
});
