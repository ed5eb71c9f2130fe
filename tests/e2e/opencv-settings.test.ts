import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { TASK_CHANNEL, type TaskEvent } from '../../src/engines/pool.js';
import { createCannyResource } from '../../src/resources/canny.js';
import { createHaarFaceResource } from '../../src/resources/haar-faces.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { image } from '../helpers/paths.js';
import { assertSameBoxes, reference } from '../resources/haar-reference.js';

/**
 * OpenCV settings given a value other than their default through the app (the engine is the one
 * createApp builds from the config): were the line passing one on dropped, these answers or
 * counts would change. Nothing here depends on how long the work takes.
 */

describe('CVSERVE_WORKER_MAX_HEAP_MB through the app', () => {
  let svc: CvServe;
  before(async () => {
    // OpenCV.js's Canny: the addon's (the default) leaves the wasm heap alone.
    svc = await createTestApp({ opencvWorkers: 1, workerMaxHeapMb: 128, cannyEngine: 'opencv' }, { resources: [createCannyResource()] });
  });
  after(() => svc.close());

  it('a Canny that grows the wasm heap past 128 MB retires its worker after answering (256, the default, would keep it)', async () => {
    // 4500x3500, dark left half, light right half: Canny on it takes OpenCV's heap from 128 to 256 MiB.
    const width = 4500;
    const height = 3500;
    const half = await sharp({ create: { width: width / 2, height, channels: 3, background: '#282828' } }).png().toBuffer();
    const big = await sharp({ create: { width, height, channels: 3, background: '#dcdcdc' } }).composite([{ input: half, left: 0, top: 0 }]).png().toBuffer();
    assert.equal(svc.engines.opencv.stats().retired, 0);
    const res = await request(svc.app).post('/canny?format=png').set('Content-Type', 'image/png').send(big);
    assert.equal(res.status, 200, brief(res));
    const edges = await sharp(res.body as Buffer).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([edges.info.width, edges.info.height], [width, height]);
    const row = 1000 * width;
    assert.equal(edges.data[row + width / 2 - 1]! + edges.data[row + width / 2]!, 255, 'the one vertical edge is found');
    const stats = svc.engines.opencv.stats();
    assert.deepEqual([stats.retired, stats.failed], [1, 0]);
    const metrics = (await request(svc.app).get('/metrics')).text;
    assert.match(metrics, /^cvserve_pool_worker_restarts_total\{pool="opencv",reason="retired"\} 1$/m);
    // The replacement serves the next request.
    const next = await request(svc.app).post('/canny?format=png').set('Content-Type', 'image/jpeg').send(readFileSync(image('test_face_processing.jpg')));
    assert.equal(next.status, 200, brief(next));
  });
});

describe('CVSERVE_DETECT_SPLIT_MIN_PIXELS through the app', () => {
  const photo = readFileSync(image('test_face_processing.jpg')); // 640x482 = 308,480 pixels
  const faces = reference.images['test_face_processing.jpg'].faces;

  /** Worker tasks one /detect of the photo takes, after a first request has taught the engine the cascade's window. */
  async function tasksPerDetection(splitMinPixels: number): Promise<number> {
    const svc = await createTestApp({ opencvWorkers: 2, detectSplitMinPixels: splitMinPixels }, { resources: [createHaarFaceResource()] });
    try {
      const detect = () => request(svc.app).post('/detect').set('Content-Type', 'image/jpeg').send(photo);
      const first = await detect();
      assert.equal(first.status, 200, brief(first));
      const events: TaskEvent[] = [];
      const onTask = (m: unknown) => events.push(m as TaskEvent);
      diagnostics.subscribe(TASK_CHANNEL, onTask);
      let res: request.Response;
      try {
        res = await detect();
      } finally {
        diagnostics.unsubscribe(TASK_CHANNEL, onTask);
      }
      assert.equal(res.status, 200, brief(res));
      assertSameBoxes(res.body.result.map((r: { box: number[] }) => r.box), faces, 0.9);
      return events.filter((e) => e.poolId === svc.engines.opencv.stats().id && e.op === 'detect').length;
    } finally {
      await svc.close();
    }
  }

  it('splits the photo across both idle workers at 300,000 pixels, not at 400,000, with the same boxes', async () => {
    assert.equal(await tasksPerDetection(400_000), 1, 'the photo is below the threshold: one task');
    assert.ok((await tasksPerDetection(300_000)) >= 2, 'the photo is above the threshold: split');
  });
});
