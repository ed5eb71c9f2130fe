import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { boxIoU } from '../helpers/images.js';
import { image } from '../helpers/paths.js';

type Prediction = { label: string; confidence: number; x_min: number; y_min: number; x_max: number; y_max: number };

const boxOf = (p: Prediction) => [p.x_min, p.y_min, p.x_max, p.y_max];

/** Every dialect answer: JSON with a Content-Length, never chunked. */
function assertDialect(res: request.Response, status: number): void {
  assert.equal(res.status, status, brief(res));
  assert.equal(res.type, 'application/json');
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)), 'Content-Length');
  assert.equal(res.headers['transfer-encoding'], undefined, 'not chunked');
}

function assertError(res: request.Response, status: number, message: RegExp): void {
  assertDialect(res, status);
  assert.deepEqual(Object.keys(res.body), ['success', 'error', 'code']);
  assert.equal(res.body.success, false);
  assert.equal(res.body.code, status);
  assert.match(res.body.error, message);
}

describe('DeepStack / CodeProject.AI dialect over HTTP (real models)', () => {
  let svc: CvServe;
  let cat: Buffer;
  let car: Buffer;
  let group: Buffer;

  before(async () => {
    svc = await createTestApp({ maxOutputPixels: 5_000_000 });
    [cat, car, group] = await Promise.all(['cat_small.jpg', 'car.jpg', 'test_face_processing.jpg'].map((f) => readFile(image(f))));
  });
  after(() => svc.close());

  it('/v1/vision/detection cat_small.jpg: cat and bed at the default 0.4, integer corners, best first', async () => {
    const res = await request(svc.app).post('/v1/vision/detection').attach('image', cat, 'image.jpg');
    assertDialect(res, 200);
    assert.equal(res.body.success, true);
    const predictions = res.body.predictions as Prediction[];
    assert.deepEqual(predictions.map((p) => p.label), ['cat', 'bed']);
    assert.equal(res.body.count, 2);
    assert.equal(res.body.message, 'Found cat, bed');
    assert.deepEqual(Object.keys(predictions[0]!), ['label', 'confidence', 'x_min', 'y_min', 'x_max', 'y_max']);
    assert.ok(boxIoU(boxOf(predictions[0]!), [261, 372, 912, 1275]) >= 0.9, JSON.stringify(predictions[0]));
    assert.ok(Math.abs(predictions[0]!.confidence - 0.759) < 0.01, String(predictions[0]!.confidence));
    for (const p of predictions) for (const v of boxOf(p)) assert.ok(Number.isInteger(v), 'integer corners');
    for (const key of ['inferenceMs', 'processMs', 'analysisRoundTripMs']) assert.ok(Number.isInteger(res.body[key]) && res.body[key] >= 0, key);
    assert.ok(res.body.inferenceMs <= res.body.processMs && res.body.processMs <= res.body.analysisRoundTripMs, 'timings nest');
  });

  it('car.jpg: four cars at 0.4; min_confidence=0.3 (form field) adds the truck', async () => {
    const res = await request(svc.app).post('/v1/vision/detection').attach('image', car, 'car.jpg');
    assertDialect(res, 200);
    const cars = res.body.predictions as Prediction[];
    assert.deepEqual(cars.map((p) => p.label), ['car', 'car', 'car', 'car']);
    assert.ok(boxIoU(boxOf(cars[0]!), [255, 56, 1948, 1258]) >= 0.9, JSON.stringify(cars[0]));
    const low = await request(svc.app).post('/v1/vision/detection').field('min_confidence', '0.3').attach('image', car, 'car.jpg');
    assert.deepEqual((low.body.predictions as Prediction[]).map((p) => p.label).sort(), ['car', 'car', 'car', 'car', 'truck']);
  });

  it('test_face_processing.jpg: 17 persons at min_confidence 0.3 (query string, as CodeProject.AI takes it)', async () => {
    const res = await request(svc.app).post('/v1/vision/detection?min_confidence=0.3').attach('image', group, 'group.jpg');
    assertDialect(res, 200);
    const labels = (res.body.predictions as Prediction[]).map((p) => p.label);
    assert.equal(labels.length, 17);
    assert.ok(labels.every((l) => l === 'person'));
  });

  it('paths are case-insensitive and take a trailing slash; the form field wins over the query', async () => {
    const res = await request(svc.app).post('/V1/Vision/DETECTION/?min_confidence=0.9').field('min_confidence', '0.5').attach('image', cat, 'image.jpg');
    assertDialect(res, 200);
    assert.deepEqual((res.body.predictions as Prediction[]).map((p) => p.label), ['cat', 'bed']);
  });

  it('min_confidence: under 0.1 counts as 0.1 (DeepStack), "NaN" and empty are the default (Node-RED sends NaN), > 1 and text are 400', async () => {
    const labels = async (value: string) => {
      const res = await request(svc.app).post('/v1/vision/detection').field('min_confidence', value).attach('image', cat, 'image.jpg');
      assertDialect(res, 200);
      return (res.body.predictions as Prediction[]).map((p) => `${p.label} ${p.confidence}`);
    };
    assert.deepEqual(await labels('0'), await labels('0.1'));
    assert.deepEqual(await labels('-3'), await labels('0.1'));
    assert.ok((await labels('0.1')).length > 2, 'more found at 0.1');
    assert.deepEqual(await labels('NaN'), await labels('0.4'));
    assert.deepEqual(await labels(''), await labels('0.4'));
    const high = await request(svc.app).post('/v1/vision/detection').field('min_confidence', '1.5').attach('image', cat, 'image.jpg');
    assertError(high, 400, /^min_confidence cannot be greater than 1$/);
    const text = await request(svc.app).post('/v1/vision/detection').field('min_confidence', 'high').attach('image', cat, 'image.jpg');
    assertError(text, 400, /^Invalid value for min_confidence/);
  });

  it('the image: field "image", else the first file (CodeProject.AI); none is 400; not an image is 415', async () => {
    const other = await request(svc.app).post('/v1/vision/detection').attach('photo', cat, 'cat.jpg');
    assertDialect(other, 200);
    assert.equal(other.body.predictions[0].label, 'cat');
    const picked = await request(svc.app).post('/v1/vision/detection').attach('photo', car, 'car.jpg').attach('image', cat, 'cat.jpg');
    assert.equal(picked.body.predictions[0].label, 'cat');
    assertError(await request(svc.app).post('/v1/vision/detection').field('min_confidence', '0.5'), 400, /^No valid image file found/);
    assertError(await request(svc.app).post('/v1/vision/detection'), 400, /^No valid image file found/);
    assertError(await request(svc.app).post('/v1/vision/detection').type('form').send({ api_key: '' }), 400, /^No valid image file found/);
    assertError(await request(svc.app).post('/v1/vision/detection').attach('image', Buffer.from('not an image at all'), 'x.jpg'), 415, /Unsupported image type/);
    assertError(await request(svc.app).post('/v1/vision/detection').send({ imageBase64: cat.toString('base64') }), 415, /multipart\/form-data/);
  });

  it('a part without a Content-Type (Home Assistant, Frigate) is read by its bytes', async () => {
    const boundary = 'dsboundary1234';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="image"\r\n\r\n`),
      cat,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await request(svc.app).post('/v1/vision/detection').set('Content-Type', `multipart/form-data; boundary=${boundary}`).send(body);
    assertDialect(res, 200);
    assert.equal(res.body.predictions[0].label, 'cat');
  });

  it('unknown /v1 routes are 404 in the dialect, wrong methods 405 with Allow', async () => {
    assertError(await request(svc.app).post('/v1/vision/nothing').attach('image', cat, 'image.jpg'), 404, /No DeepStack route POST \/v1\/vision\/nothing/);
    assertError(await request(svc.app).get('/v1'), 404, /No DeepStack route/);
    const get = await request(svc.app).get('/v1/vision/detection');
    assertError(get, 405, /Method not allowed/);
    assert.equal(get.headers.allow, 'POST');
    // The native service keeps its own shape outside /v1.
    const native = await request(svc.app).get('/v2/vision/detection');
    assert.equal(native.status, 404);
    assert.equal(native.body.code, 'NOT_FOUND');
  });

  it('limits as the native routes: Content-Encoding 415, a declared body over the limit 413, closing the connection', async () => {
    const gz = await request(svc.app).post('/v1/vision/detection').set('Content-Encoding', 'gzip').attach('image', cat, 'image.jpg');
    assertError(gz, 415, /Content-Encoding gzip/);
    const big = await request(svc.app)
      .post('/v1/vision/detection')
      .set('Content-Type', 'multipart/form-data; boundary=x')
      .set('Content-Length', String(1 << 30))
      .send('');
    assertError(big, 413, /over the limit/);
    assert.equal(big.headers.connection, 'close');
  });

  it('custom models: /custom/list names every manifest detector; /custom/YOLOX-Nano answers as /detection', async () => {
    for (const method of ['post', 'get'] as const) {
      const list = await request(svc.app)[method]('/v1/vision/custom/list');
      assertDialect(list, 200);
      assert.equal(list.body.success, true);
      assert.deepEqual(list.body.models, ['yolox-nano']);
    }
    const custom = await request(svc.app).post('/v1/vision/custom/YOLOX-Nano').attach('image', cat, 'image.jpg');
    assertDialect(custom, 200);
    const plain = await request(svc.app).post('/v1/vision/detection').attach('image', cat, 'image.jpg');
    assert.deepEqual(custom.body.predictions, plain.body.predictions);
    assertError(await request(svc.app).post('/v1/vision/custom/ipcam-general').attach('image', cat, 'image.jpg'), 404, /No custom model named "ipcam-general"/);
  });

  it('/v1/vision/scene: the ImageNet classifier\'s top class (no scene model in the manifest)', async () => {
    const res = await request(svc.app).post('/v1/vision/scene').attach('image', car, 'car.jpg');
    assertDialect(res, 200);
    assert.equal(res.body.success, true);
    assert.equal(res.body.label, 'sports car');
    assert.ok(Math.abs(res.body.confidence - 0.367) < 0.01, String(res.body.confidence));
  });

  it('/v1/image/superresolution answers a PNG x3 as imageBase64; /v1/vision/enhance a JPEG as base64 with its size', async () => {
    const small = await sharp(car).resize(120, 68).jpeg().toBuffer();
    const cp = await request(svc.app).post('/v1/image/superresolution').attach('image', small, 'image.jpg');
    assertDialect(cp, 200);
    const png = await sharp(Buffer.from(cp.body.imageBase64, 'base64')).metadata();
    assert.deepEqual([png.format, png.width, png.height], ['png', 360, 204]);
    assert.ok(Number.isInteger(cp.body.inferenceMs) && Number.isInteger(cp.body.processMs));
    const ds = await request(svc.app).post('/v1/vision/enhance').attach('image', small, 'image.jpg');
    assertDialect(ds, 200);
    const jpeg = await sharp(Buffer.from(ds.body.base64, 'base64')).metadata();
    assert.deepEqual([jpeg.format, jpeg.width, jpeg.height, ds.body.width, ds.body.height], ['jpeg', 360, 204, 360, 204]);
  });

  it('a result over the output limit is 413 before any work, in the dialect', async () => {
    const wide = await sharp({ create: { width: 2000, height: 1200, channels: 3, background: '#777' } }).jpeg().toBuffer();
    assertError(await request(svc.app).post('/v1/vision/enhance').attach('image', wide, 'image.jpg'), 413, /6000x3600/);
  });

  it('/v1/vision/face: the SSD detector\'s 17 faces with their own confidences, no label', async () => {
    const res = await request(svc.app).post('/v1/vision/face').attach('image', group, 'group.jpg');
    assertDialect(res, 200);
    const faces = res.body.predictions as (Prediction & { label?: string })[];
    assert.equal(faces.length, 17);
    assert.equal(res.body.count, 17);
    assert.deepEqual(Object.keys(faces[0]!), ['confidence', 'x_min', 'y_min', 'x_max', 'y_max']);
    assert.ok(faces.every((f) => f.confidence >= 0.55 && f.confidence <= 1));
    assert.ok(new Set(faces.map((f) => f.confidence)).size > 1, 'confidences differ');
    const high = await request(svc.app).post('/v1/vision/face/').field('min_confidence', '0.999').attach('image', group, 'group.jpg');
    assert.ok(high.body.predictions.length < 17, 'a higher min_confidence drops faces');
  });

  it('status routes: ping, updateavailable (GET and POST, CodeProject.AI\'s /v1/server/status aliases), answered locally', async () => {
    const ping = await request(svc.app).get('/v1/status/ping');
    assertDialect(ping, 200);
    assert.deepEqual(ping.body, { success: true });
    assertDialect(await request(svc.app).get('/v1/server/status/ping'), 200);
    for (const res of [await request(svc.app).get('/v1/status/updateavailable'), await request(svc.app).post('/v1/server/status/updateavailable')]) {
      assertDialect(res, 200);
      assert.equal(res.body.success, true);
      assert.equal(res.body.updateAvailable, false);
      assert.deepEqual(res.body.current, res.body.latest);
      assert.equal(res.body.current.major, 0);
    }
  });

  it('metrics count each dialect route by its pattern', async () => {
    await request(svc.app).post('/v1/vision/custom/yolox-nano').attach('image', cat, 'image.jpg');
    const text = (await request(svc.app).get('/metrics')).text;
    assert.match(text, /cvserve_http_requests_total\{method="POST",route="\/v1\/vision\/detection",status="200"\} \d+/);
    assert.match(text, /cvserve_http_requests_total\{method="POST",route="\/v1\/vision\/custom\/:model",status="200"\} \d+/);
    assert.match(text, /cvserve_http_requests_total\{method="GET",route="\/v1\/status\/ping",status="200"\} \d+/);
  });

  it('/openapi.json documents every /v1 route under the tag deepstack; the playground\'s route list leaves them out', async () => {
    const doc = (await request(svc.app).get('/openapi.json')).body as { paths: Record<string, Record<string, { tags?: string[] }>> };
    for (const path of ['/v1/vision/detection', '/v1/vision/custom/{model}', '/v1/vision/custom/list', '/v1/vision/face', '/v1/vision/face/register', '/v1/vision/scene', '/v1/image/superresolution', '/v1/status/ping']) {
      const item = doc.paths[path];
      assert.ok(item, path);
      const op = item.post ?? item.get;
      assert.deepEqual(op?.tags, ['deepstack'], path);
      assert.equal((item as Record<string, unknown>)['x-cvserve'], undefined, `${path} is not a playground route`);
    }
    const { routesFrom } = await import('../../src/web/routes.js');
    const names = routesFrom(doc as never).map((r) => r.name);
    assert.ok(names.includes('catdetection') && !names.some((n) => n.startsWith('v1')), names.join(','));
  });
});
