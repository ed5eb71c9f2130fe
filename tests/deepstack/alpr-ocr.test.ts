import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createTestApp } from '../helpers/app.js';
import { CvServeClient } from '../../src/client.js';
import { brief, listen } from '../helpers/http.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { placePlate, plateQuad, renderPlate } from '../helpers/plates.js';

/** CodeProject.AI-shaped ALPR and OCR requests (file field `upload`, `min_confidence`) and the native /alpr and /ocr, over HTTP. */

function assertDialect(res: request.Response, status: number): void {
  assert.equal(res.status, status, brief(res));
  assert.equal(res.type, 'application/json');
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)), 'Content-Length');
  assert.equal(res.headers['transfer-encoding'], undefined, 'not chunked');
}

describe('ALPR and OCR over HTTP: CodeProject.AI routes and the native ones', () => {
  let svc: CvServe;
  let photo: Buffer;

  before(async () => {
    svc = await createTestApp({ ocrMaxSide: 1280, ocrMaxBoxes: 20, alprRegion: 'us' });
    const plate = await renderPlate('7ABC123', 'us', 520);
    photo = await placePlate(await readFile(path.join(REPO_ROOT, 'data', 'coffee.jpg')), plate, { quad: plateQuad(300, 250, 300, 2, 10, 3), quality: 85 });
  });
  after(() => svc.close());

  for (const route of ['/v1/vision/alpr', '/v1/image/alpr']) {
    it(`${route}: the file in field "upload", min_confidence as a form field; CodeProject.AI's answer`, async () => {
      const res = await request(svc.app).post(route).field('min_confidence', '0.4').attach('upload', photo, 'car.jpg');
      assertDialect(res, 200);
      const b = res.body;
      assert.equal(b.success, true);
      assert.equal(b.count, 1);
      assert.equal(b.message, 'Found Plate: 7ABC123');
      const [p] = b.predictions;
      assert.equal(p.label, 'Plate: 7ABC123');
      assert.equal(p.plate, '7ABC123');
      assert.ok(p.confidence > 0.9 && p.confidence <= 1);
      for (const k of ['x_min', 'y_min', 'x_max', 'y_max']) assert.ok(Number.isInteger(p[k]), k);
      assert.ok(p.x_min > 150 && p.x_max < 450 && p.y_min > 170 && p.y_max < 330, JSON.stringify(p));
      assert.equal(p.candidates[0].plate, '7ABC123');
      // CVSERVE_ALPR_REGION=us applies: the client sent no region.
      assert.equal(p.candidates[0].matchesTemplate, true);
      assert.ok(Number.isInteger(b.inferenceMs) && Number.isInteger(b.processMs));
    });
  }

  it('/v1/vision/alpr: a photo without a plate is a success with no predictions', async () => {
    const res = await request(svc.app).post('/v1/vision/alpr').attach('upload', await readFile(path.join(REPO_ROOT, 'data', 'chelsea.jpg')), 'cat.jpg');
    assertDialect(res, 200);
    assert.deepEqual([res.body.success, res.body.count, res.body.message, res.body.predictions], [true, 0, 'No plates found', []]);
  });

  it('/v1/vision/alpr: min_confidence above the plate\'s confidence leaves it out; no file is 400 in the dialect', async () => {
    const high = await request(svc.app).post('/v1/vision/alpr').field('min_confidence', '1').attach('upload', photo, 'car.jpg');
    assertDialect(high, 200);
    assert.equal(high.body.count, 0);
    const none = await request(svc.app).post('/v1/vision/alpr').field('min_confidence', '0.4');
    assertDialect(none, 400);
    assert.deepEqual(Object.keys(none.body), ['success', 'error', 'code']);
  });

  for (const route of ['/v1/vision/ocr', '/v1/image/ocr']) {
    it(`${route}: every line as a prediction labelled with its text`, async () => {
      const res = await request(svc.app).post(route).attach('upload', photo, 'car.jpg');
      assertDialect(res, 200);
      const labels = res.body.predictions.map((p: { label: string }) => p.label);
      assert.ok(labels.includes('7ABC123') && labels.includes('California'), JSON.stringify(labels));
      assert.equal(res.body.message, `${labels.length} pieces of text found`);
      assert.equal(res.body.count, labels.length);
    });
  }

  it('POST /alpr?region=us (native): the plate, its candidates, and the image with it drawn for draw=true', async () => {
    const res = await request(svc.app).post('/alpr?region=us').attach('image', photo, 'car.jpg');
    assert.equal(res.status, 200, brief(res));
    assert.equal(res.body.result[0].plate, '7ABC123');
    assert.equal(res.body.result[0].region, 'us');
    assert.equal(res.body.result[0].matchesTemplate, true);
    const drawn = await request(svc.app).post('/alpr?draw=true&format=png').attach('image', photo, 'car.jpg').buffer(true);
    assert.equal(drawn.status, 200);
    assert.equal(drawn.type, 'image/png');
    const meta = await sharp(drawn.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height], [600, 400]);
  });

  it('POST /ocr?draw=true: the photo with the lines and their text drawn (text with < & > is escaped for the SVG)', async () => {
    const sign = await sharp({ create: { width: 640, height: 200, channels: 3, background: '#fff' } })
      .composite([{ input: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="200"><text x="40" y="120" font-family="DejaVu Sans" font-size="64">A&lt;B &amp; C&gt;D</text></svg>') }])
      .png()
      .toBuffer();
    const json = await request(svc.app).post('/ocr?charset=all').attach('image', sign, 'sign.png');
    assert.equal(json.status, 200, brief(json));
    assert.ok(json.body.result.length >= 1);
    const drawn = await request(svc.app).post('/ocr?draw=true&charset=all').attach('image', sign, 'sign.png').buffer(true);
    assert.equal(drawn.status, 200, brief(drawn));
    assert.equal(drawn.type, 'image/png');
  });

  it('the typed client: alpr() and ocr() on a real server (127.0.0.1)', async () => {
    const server = await listen(svc.app);
    try {
      const client = new CvServeClient({ baseUrl: server.url });
      const plates = await client.alpr(new Uint8Array(photo), { region: 'us' });
      assert.equal(plates.result[0]?.plate, '7ABC123');
      const lines = await client.ocr(new Uint8Array(photo), { minConfidence: 0.8 }, { via: 'json' });
      assert.ok(lines.result.some((l) => l.text === '7ABC123'));
    } finally {
      await server.close();
    }
  });

  it('maxSide over CVSERVE_OCR_MAX_SIDE and maxBoxes over CVSERVE_OCR_MAX_BOXES are refused before the work (413 naming the setting)', async () => {
    const side = await request(svc.app).post('/ocr?maxSide=2000').attach('image', photo, 'car.jpg');
    assert.equal(side.status, 413, brief(side));
    assert.equal(side.body.code, 'WORK_TOO_LARGE');
    assert.match(side.body.message, /CVSERVE_OCR_MAX_SIDE/);
    const boxes = await request(svc.app).post('/alpr?maxBoxes=21').attach('image', photo, 'car.jpg');
    assert.equal(boxes.status, 413, brief(boxes));
    assert.match(boxes.body.message, /CVSERVE_OCR_MAX_BOXES/);
  });
});

describe('CVSERVE_OCR_PRELOAD=off: the text models load on the first request that reads text', () => {
  let svc: CvServe;
  let photo: Buffer;
  const textPools = () => svc.engines.onnx.stats().map((s) => s.name).filter((n) => /ppocr/.test(n)).sort();

  before(async () => {
    svc = await createTestApp({ ocrPreload: false });
    const plate = await renderPlate('7ABC123', 'us', 520);
    photo = await placePlate(await readFile(path.join(REPO_ROOT, 'data', 'coffee.jpg')), plate, { quad: plateQuad(250, 260, 280, 2, 0, 0), quality: 92 });
  });
  after(() => svc.close());

  it('ready without them; two requests at once share one load and both read the plate', async () => {
    assert.deepEqual(textPools(), []);
    const ready = await request(svc.app).get('/readyz');
    assert.equal(ready.status, 200, brief(ready));
    const [ocr, alpr] = await Promise.all([
      request(svc.app).post('/ocr').attach('image', photo, 'car.jpg'),
      request(svc.app).post('/alpr?region=us').attach('image', photo, 'car.jpg'),
    ]);
    assert.equal(ocr.status, 200, brief(ocr));
    assert.ok(ocr.body.result.some((l: { text: string }) => l.text === '7ABC123'), JSON.stringify(ocr.body.result.map((l: { text: string }) => l.text)));
    assert.equal(alpr.status, 200, brief(alpr));
    assert.equal(alpr.body.result[0]?.plate, '7ABC123');
    assert.deepEqual(textPools(), ['onnx:ppocr-v4-det', 'onnx:ppocr-v4-rec']);
  });
});
