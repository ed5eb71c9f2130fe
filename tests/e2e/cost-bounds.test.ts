import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import type { Config } from '../../src/config.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { image } from '../helpers/paths.js';

/** A real, tiny PNG of a flat colour: a few hundred bytes however thin and long. */
function flatPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#888' } }).png().toBuffer();
}

/** CPU time (all threads of this process: the app, its workers, libvips) one request took, in ms. */
async function withCpu<T>(work: () => Promise<T>): Promise<{ result: T; cpuMs: number }> {
  const start = process.cpuUsage();
  const result = await work();
  const used = process.cpuUsage(start);
  return { result, cpuMs: (used.user + used.system) / 1000 };
}

/** A refusal from the header costs next to nothing, where the work it stands for costs seconds to minutes. */
const REFUSAL_CPU_MS = 500;

async function ready(svc: CvServe): Promise<void> {
  await Promise.all(svc.resources.map((r) => (r as { settled?: () => Promise<void> }).settled?.()));
}

describe('every request is bounded before its work starts (issue 12 reproductions)', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp();
    await ready(svc);
  });
  after(() => svc.close());

  const post = (route: string, body: Buffer, type = 'image/png') => request(svc.app).post(route).set('Content-Type', type).send(body);

  for (const n of [4000, 16_000, 24_000, 1_000_000]) {
    it(`/predict refuses a 1x${n} PNG (its 256-pixel short side would make 256x${256 * n}) with 413, cheaply`, async () => {
      const png = await flatPng(1, n);
      const { result: res, cpuMs } = await withCpu(() => post('/predict', png));
      assert.equal(res.status, 413, brief(res));
      assert.equal(res.body.code, 'WORK_TOO_LARGE');
      assert.match(res.body.message, new RegExp(`256x${256 * n} resized copy.*CVSERVE_MAX_WORK_PIXELS`));
      assert.ok(cpuMs < REFUSAL_CPU_MS, `${Math.round(cpuMs)} ms CPU`);
    });
  }

  it('/predict still answers an ordinary photo and a moderately thin one', async () => {
    const photo = await post('/predict', readFileSync(image('cat_small.jpg')), 'image/jpeg');
    assert.equal(photo.status, 200, brief(photo));
    const thin = await post('/predict', await flatPng(100, 10_000));
    assert.equal(thin.status, 200, brief(thin));
  });

  for (const n of [100_000, 1_000_000]) {
    it(`/upscale refuses a 1x${n} PNG (hundreds of mostly padding tiles) with 413, cheaply`, async () => {
      const png = await flatPng(1, n);
      const { result: res, cpuMs } = await withCpu(() => post('/upscale', png));
      assert.equal(res.status, 413, brief(res));
      assert.equal(res.body.code, 'WORK_TOO_LARGE');
      assert.match(res.body.message, /CVSERVE_(UPSCALE_MAX_TILES|MAX_WORK_PIXELS)/);
      assert.ok(cpuMs < REFUSAL_CPU_MS, `${Math.round(cpuMs)} ms CPU`);
    });
  }

  it('/detect refuses car.jpg at scaleFactor 1.01 (a 106 M pixel pyramid) with 413 suggesting maxSide, cheaply', async () => {
    const { result: res, cpuMs } = await withCpu(() => post('/detect?scaleFactor=1.01', readFileSync(image('car.jpg')), 'image/jpeg'));
    assert.equal(res.status, 413, brief(res));
    assert.equal(res.body.code, 'WORK_TOO_LARGE');
    assert.match(res.body.message, /CVSERVE_DETECT_MAX_PYRAMID_PIXELS.*maxSide/);
    assert.ok(cpuMs < REFUSAL_CPU_MS, `${Math.round(cpuMs)} ms CPU`);
  });

  it('/detect refuses a 6000x6000 PNG at the defaults, and answers it with maxSide', async () => {
    const big = await flatPng(6000, 6000);
    const refused = await post('/detect', big);
    assert.equal(refused.status, 413, brief(refused));
    assert.match(refused.body.message, /searching 6000x6000 at scaleFactor 1\.1/);
    const shrunk = await post('/detect?maxSide=1500', big);
    assert.equal(shrunk.status, 200, brief(shrunk));
    assert.deepEqual(shrunk.body, { status: 'ok', result: [] });
  });

  it('/canny refuses an edge map a JPEG cannot hold before making it, and makes it as PNG', async () => {
    const wide = await flatPng(70_000, 1);
    const { result: res, cpuMs } = await withCpu(() => post('/canny', wide));
    assert.equal(res.status, 413, brief(res));
    assert.equal(res.body.code, 'OUTPUT_TOO_LARGE');
    assert.match(res.body.message, /JPEG image has at most 65500 pixels on a side/);
    assert.ok(cpuMs < REFUSAL_CPU_MS, `${Math.round(cpuMs)} ms CPU`);
    const png = await post('/canny?format=png', wide);
    assert.equal(png.status, 200, brief(png));
    assert.equal(png.type, 'image/png');
  });
});

describe('each cost limit is a setting that reaches its route', () => {
  const cases: { name: string; overrides: Partial<Config>; route: string; file: string; code: string; setting: string }[] = [
    { name: 'CVSERVE_MAX_WORK_PIXELS', overrides: { maxWorkPixels: 50_000 }, route: '/predict', file: 'test_face_processing.jpg', code: 'WORK_TOO_LARGE', setting: 'CVSERVE_MAX_WORK_PIXELS' },
    { name: 'CVSERVE_UPSCALE_MAX_TILES', overrides: { upscaleMaxTiles: 3 }, route: '/upscale', file: 'test_face_processing.jpg', code: 'WORK_TOO_LARGE', setting: 'CVSERVE_UPSCALE_MAX_TILES' },
    { name: 'CVSERVE_DETECT_MAX_PYRAMID_PIXELS', overrides: { detectMaxPyramidPixels: 200_000 }, route: '/detect', file: 'test_face_processing.jpg', code: 'WORK_TOO_LARGE', setting: 'CVSERVE_DETECT_MAX_PYRAMID_PIXELS' },
    { name: 'the same for /catfacedetection', overrides: { detectMaxPyramidPixels: 200_000 }, route: '/catfacedetection', file: 'cat_small.jpg', code: 'WORK_TOO_LARGE', setting: 'CVSERVE_DETECT_MAX_PYRAMID_PIXELS' },
    { name: 'CVSERVE_MAX_OUTPUT_PIXELS for /canny', overrides: { maxOutputPixels: 100_000 }, route: '/canny', file: 'test_face_processing.jpg', code: 'OUTPUT_TOO_LARGE', setting: 'CVSERVE_MAX_OUTPUT_PIXELS' },
    { name: 'CVSERVE_MAX_OUTPUT_PIXELS for drawn boxes', overrides: { maxOutputPixels: 100_000 }, route: '/detect?draw=true', file: 'test_face_processing.jpg', code: 'OUTPUT_TOO_LARGE', setting: 'CVSERVE_MAX_OUTPUT_PIXELS' },
    { name: 'CVSERVE_MAX_OUTPUT_PIXELS for drawn detections', overrides: { maxOutputPixels: 100_000 }, route: '/catdetection?draw=true', file: 'cat_small.jpg', code: 'OUTPUT_TOO_LARGE', setting: 'CVSERVE_MAX_OUTPUT_PIXELS' },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.route} answers 413 ${c.code} naming ${c.setting}`, async () => {
      const svc = await createTestApp(c.overrides);
      try {
        await ready(svc);
        const res = await request(svc.app).post(c.route).set('Content-Type', 'image/jpeg').send(readFileSync(image(c.file)));
        assert.equal(res.status, 413, brief(res));
        assert.equal(res.body.code, c.code);
        assert.match(res.body.message, new RegExp(c.setting));
      } finally {
        await svc.close();
      }
    });
  }
});
