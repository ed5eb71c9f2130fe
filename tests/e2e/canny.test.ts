import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { TASK_CHANNEL, type TaskEvent } from '../../src/engines/pool.js';
import { openImage } from '../../src/image/decode.js';
import { encodeImage } from '../../src/image/encode.js';
import { createCannyResource } from '../../src/resources/canny.js';
import { createTestApp } from '../helpers/app.js';
import { appWithHeldOpenCv } from '../helpers/gates.js';
import { brief } from '../helpers/http.js';
import { servePhotos } from '../helpers/photo-server.js';
import { edgeIoU, grayPixels } from '../helpers/images.js';
import { image, reference } from '../helpers/paths.js';

const PHOTOS = ['test_face_processing.jpg', 'cat_small.jpg', 'car.jpg'];

/** Native parity through the whole service with the npm OpenCV.js build too (the default SIMD build is checked below). */
describe('/canny with CVSERVE_OPENCV_BUILD=npm', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({ opencvBuild: 'npm' });
  });
  after(() => svc.close());
  it('runs the npm build: CVSERVE_OPENCV_BUILD reaches the workers (both builds answer alike, so only they can tell)', async () => {
    assert.deepEqual(await svc.engines.opencv.info(), { build: 'npm', version: '4.12.0', simd: false });
  });
  for (const name of PHOTOS) {
    it(`matches native OpenCV's edge map on ${name} (PNG, edge IoU ≥ 0.99)`, async () => {
      const res = await request(svc.app).post('/canny?format=png').attach('image', readFileSync(image(name)), name);
      assert.equal(res.status, 200, brief(res));
      const ours = await grayPixels(res.body as Buffer);
      const ref = await grayPixels(reference(`canny_${name.replace(/\.jpg$/, '.png')}`));
      const iou = edgeIoU(ours.data, ref.data);
      assert.ok(iou >= 0.99, `edge IoU ${iou.toFixed(4)} < 0.99`);
    });
  }
});
const bytes = () => readFileSync(image('test_face_processing.jpg'));

describe('/canny', () => {
  let svc: CvServe;
  let photos: Awaited<ReturnType<typeof servePhotos>>;
  let base: string;

  before(async () => {
    svc = await createTestApp({ allowPrivateNetworks: true });
    // A local image server for the ?url= way (private networks are allowed in this app only).
    photos = await servePhotos(PHOTOS);
    base = photos.base;
  });
  after(async () => {
    await svc.close();
    await photos.close();
  });

  it('runs the SIMD build by default (the workers report the module they loaded)', async () => {
    assert.deepEqual(await svc.engines.opencv.info(), { build: 'simd', version: '4.10.0', simd: true });
  });

  for (const name of PHOTOS) {
    it(`matches native OpenCV's edge map on ${name} (PNG, edge IoU ≥ 0.99)`, async () => {
      const res = await request(svc.app).post('/canny?format=png').attach('image', readFileSync(image(name)), name);
      assert.equal(res.status, 200);
      assert.equal(res.type, 'image/png');
      const ours = await grayPixels(res.body as Buffer);
      const ref = await grayPixels(reference(`canny_${name.replace(/\.jpg$/, '.png')}`));
      assert.deepEqual([ours.width, ours.height], [ref.width, ref.height]);
      const iou = edgeIoU(ours.data, ref.data);
      assert.ok(iou >= 0.99, `edge IoU ${iou.toFixed(4)} < 0.99`);
    });
  }

  const ways: [string, () => request.Test][] = [
    ['GET ?url=', () => request(svc.app).get(`/canny?format=png&url=${encodeURIComponent(`${base}/test_face_processing.jpg`)}`)],
    ['multipart image', () => request(svc.app).post('/canny?format=png').attach('image', bytes(), 'face.jpg')],
    ['JSON imageBase64', () => request(svc.app).post('/canny').send({ imageBase64: bytes().toString('base64'), format: 'png' })],
    ['JSON imageBase64 with a data: URL prefix', () => request(svc.app).post('/canny').send({ imageBase64: `data:image/jpeg;base64,${bytes().toString('base64')}`, format: 'png' })],
    ['raw image/jpeg body', () => request(svc.app).post('/canny?format=png').set('Content-Type', 'image/jpeg').send(bytes())],
  ];
  for (const [way, send] of ways) {
    it(`takes the image by ${way} and answers the same edge map`, async () => {
      const res = await send();
      assert.equal(res.status, 200, brief(res));
      const png = res.type === 'application/json' ? Buffer.from(res.body.imageBase64, 'base64') : (res.body as Buffer);
      if (res.type === 'application/json') assert.equal(res.body.format, 'png');
      const ours = await grayPixels(png);
      const ref = await grayPixels(reference('canny_test_face_processing.png'));
      assert.ok(edgeIoU(ours.data, ref.data) >= 0.99);
    });
  }

  it('answers JPEG by default, and WebP or JSON on request', async () => {
    const jpeg = await request(svc.app).post('/canny').attach('image', bytes(), 'face.jpg');
    assert.equal(jpeg.type, 'image/jpeg');
    assert.deepEqual([...(jpeg.body as Buffer).subarray(0, 3)], [0xff, 0xd8, 0xff]);
    const webp = await request(svc.app).post('/canny?format=webp').attach('image', bytes(), 'face.jpg');
    assert.equal(webp.type, 'image/webp');
    const json = await request(svc.app).post('/canny').set('Accept', 'application/json').attach('image', bytes(), 'face.jpg');
    assert.equal(json.type, 'application/json');
    assert.equal(json.body.format, 'jpeg');
    assert.ok(Buffer.from(json.body.imageBase64, 'base64').length > 1000);
  });

  it('applies the thresholds: higher thresholds give fewer edge pixels', async () => {
    const count = async (query: string) => {
      const res = await request(svc.app).post(`/canny?format=png&${query}`).attach('image', bytes(), 'face.jpg');
      return (await grayPixels(res.body as Buffer)).data.reduce((n, v) => n + (v > 127 ? 1 : 0), 0);
    };
    const low = await count('threshold1=20&threshold2=50');
    const high = await count('threshold1=300&threshold2=600');
    assert.ok(low > high * 2, `low ${low} vs high ${high}`);
  });

  it('runs the Canny on the OpenCV worker pool, not on the event loop', async () => {
    const events: TaskEvent[] = [];
    const onTask = (m: unknown) => events.push(m as TaskEvent);
    diagnostics.subscribe(TASK_CHANNEL, onTask);
    try {
      const res = await request(svc.app).post('/canny?format=png').attach('image', readFileSync(image('car.jpg')), 'car.jpg');
      assert.equal(res.status, 200, brief(res));
    } finally {
      diagnostics.unsubscribe(TASK_CHANNEL, onTask);
    }
    const pool = svc.engines.opencv.stats().id;
    assert.deepEqual(events.filter((e) => e.poolId === pool).map((e) => [e.pool, e.op, e.ok]), [['opencv', 'canny', true]]);
  });
});

describe('/canny JPEG to JPEG inside the worker', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp();
  });
  after(() => svc.close());

  /** The answer the general way gives: sharp's decode as stored, canny(), encodeImage(). */
  async function generalWay(bytes: Buffer): Promise<Buffer> {
    const rgb = await (await openImage(bytes, { maxPixels: 40_000_000, jpegDecoder: 'sharp' })).analysisRgb();
    return encodeImage(await svc.engines.opencv.canny(rgb, 100, 200), 'jpeg');
  }

  for (const name of PHOTOS) {
    it(`answers ${name} as JPEG from one worker task, byte for byte the general way's answer`, async () => {
      const events: TaskEvent[] = [];
      const onTask = (m: unknown) => events.push(m as TaskEvent);
      const photo = readFileSync(image(name));
      diagnostics.subscribe(TASK_CHANNEL, onTask);
      let res: request.Response;
      try {
        res = await request(svc.app).post('/canny').attach('image', photo, name);
      } finally {
        diagnostics.unsubscribe(TASK_CHANNEL, onTask);
      }
      assert.equal(res.status, 200, brief(res));
      assert.equal(res.type, 'image/jpeg');
      assert.equal(res.headers.etag, undefined, 'no ETag hashed over the answer');
      const pool = svc.engines.opencv.stats().id;
      assert.deepEqual(events.filter((e) => e.poolId === pool).map((e) => [e.op, e.ok]), [['canny-jpeg', true]]);
      assert.ok((res.body as Buffer).equals(await generalWay(photo)), 'same bytes');
    });
  }

  it('takes the general way for a file the worker refuses, and answers the same error', async () => {
    const truncated = readFileSync(image('car.jpg')).subarray(0, 200_000);
    const res = await request(svc.app).post('/canny').attach('image', truncated, 'car.jpg');
    assert.equal(res.status, 422, brief(res));
    const png = await request(svc.app).post('/canny?format=png').attach('image', truncated, 'car.jpg');
    assert.deepEqual(res.body, png.body);
  });
});

describe('/canny while its work holds the only worker', () => {
  let held: Awaited<ReturnType<typeof appWithHeldOpenCv>>;
  before(async () => {
    held = await appWithHeldOpenCv({}, { resources: [createCannyResource()], size: 1, maxQueue: 4 });
  });
  after(() => held.close());

  it('keeps answering /ping, /healthz and /metrics while the Canny is still running', async () => {
    let settled = false;
    const slow = request(held.svc.app).post('/canny?format=png').attach('image', bytes(), 'face.jpg').then((r) => {
      settled = true;
      return r;
    });
    await held.opencv.running(0);
    for (const path of ['/ping', '/healthz', '/metrics']) assert.equal((await request(held.svc.app).get(path)).status, 200, path);
    assert.deepEqual((await request(held.svc.app).get('/ping')).body, { success: true });
    assert.equal(settled, false, 'the Canny was still in flight');
    assert.equal(held.opencv.stats().running, 1);
    held.opencv.release(0);
    const done = await slow;
    assert.equal(done.status, 200, brief(done));
    assert.equal(done.type, 'image/png');
  });
});
