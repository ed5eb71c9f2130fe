import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { z } from 'zod';
import { WorkerPool } from '../../src/engines/pool.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { createCannyResource } from '../../src/resources/canny.js';
import { createTestApp } from '../helpers/app.js';
import { image } from '../helpers/paths.js';

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function listen(svc: CvServe): Promise<{ server: Server; base: string }> {
  return new Promise((resolve) => {
    const server = svc.app.listen(0, '127.0.0.1', () => resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  });
}

/** A 24-megapixel JPEG: Canny on it keeps the single OpenCV worker busy for a good while. */
let large: Buffer;
const small = () => sharp(image('test_face_processing.jpg')).jpeg().toBuffer();

before(async () => {
  large = await sharp(image('car.jpg')).resize(6000, 4000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
});

const canny = (svc: CvServe, bytes: Buffer) => request(svc.app).post('/canny?format=png').set('Content-Type', 'image/jpeg').send(bytes);

describe('backpressure: a full queue answers 503 with Retry-After at once', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({ opencvWorkers: 1, opencvMaxQueue: 1 }, { resources: [createCannyResource()] });
  });
  after(() => svc.close());

  it('refuses a request beyond worker + queue, then serves again once drained', async () => {
    const stats = () => svc.engines.opencv.stats();
    const first = canny(svc, large).then((r) => r);
    await until(() => stats().running === 1, 'the first request runs');
    const second = canny(svc, large).then((r) => r);
    await until(() => stats().queued === 1, 'the second request waits');

    const t0 = performance.now();
    const refused = await canny(svc, await small());
    const refusedMs = performance.now() - t0;
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.deepEqual(refused.body, { status: 'service unavailable', message: 'Server busy, try again shortly', code: 'QUEUE_FULL' });
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(stats().rejected, 1);
    assert.ok(refusedMs < 2000, `refused without waiting for the queue (${Math.round(refusedMs)} ms)`);

    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.equal(a.type, 'image/png');
    const meta = await sharp(a.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height], [6000, 4000]);

    const again = await canny(svc, await small());
    assert.equal(again.status, 200);
    assert.deepEqual([stats().running, stats().queued, stats().rejected, stats().completed], [0, 0, 1, 3]);

    const metrics = (await request(svc.app).get('/metrics')).text;
    assert.match(metrics, /^cvserve_pool_rejected_total\{pool="opencv"\} 1$/m);
    assert.match(metrics, /^cvserve_http_requests_total\{method="POST",route="\/canny",status="503"\} 1$/m);
  });
});

/**
 * A resource whose work is a worker sleeping for ?ms= on a pool of its own: the deadline and
 * disconnect paths get exact timings without depending on how fast this machine runs Canny.
 */
function sleepyResource(pool: WorkerPool): AnyResource {
  return {
    name: 'sleepy',
    summary: 'sleeps on a worker',
    params: z.strictObject({ ms: z.coerce.number().int().min(0).max(10_000) }),
    output: { kind: 'json', schema: z.object({}) },
    async init() {},
    status: () => ({ ready: true }),
    async run(_input, params, ctx) {
      await pool.run({ op: 'sleep', ms: params.ms }, { signal: ctx.signal });
      return { kind: 'json', body: { slept: params.ms } };
    },
    async close() {},
  } as AnyResource;
}

describe('request deadline and disconnects', () => {
  let svc: CvServe;
  let server: Server;
  let base: string;
  let pool: WorkerPool;
  let jpeg: Buffer;
  before(async () => {
    jpeg = await small();
    pool = new WorkerPool({ name: 'sleepy', filename: new URL('../engines/fixtures/pool-task.ts', import.meta.url), size: 1, maxQueue: 4 });
    await pool.ready();
    svc = await createTestApp({ opencvWorkers: 1, requestTimeoutMs: 1000 }, { resources: [createCannyResource(), sleepyResource(pool)] });
    ({ server, base } = await listen(svc));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await svc.close();
    await pool.close();
  });
  const sleepy = (ms: number) => request(svc.app).post(`/sleepy?ms=${ms}`).set('Content-Type', 'image/jpeg').send(jpeg);

  it('answers 504 when a request runs past the time limit, drops the one queued behind it, and recovers', async () => {
    const running = sleepy(3000).then((r) => r);
    await until(() => pool.stats().running === 1, 'the first request runs');
    const queued = sleepy(10).then((r) => r);
    await until(() => pool.stats().queued === 1, 'the second request waits');
    for (const res of await Promise.all([running, queued])) {
      assert.equal(res.status, 504, JSON.stringify(res.body));
      assert.deepEqual(res.body, { status: 'gateway timeout', message: 'The request took too long', code: 'REQUEST_TIMEOUT' });
    }
    // The queued one never reached a worker; the running one is not waited for...
    assert.deepEqual([pool.stats().dropped, pool.stats().running, pool.stats().completed], [1, 1, 0]);
    // ...but its worker finishes it before taking the next task.
    await until(() => pool.stats().running === 0, 'the abandoned task finishes');
    const next = await sleepy(10);
    assert.equal(next.status, 200);
    assert.deepEqual(next.body, { slept: 10 });
    assert.deepEqual([pool.stats().completed, pool.stats().dropped], [2, 1]);
  });

  it('answers 504 for a real Canny over the limit, and serves once the worker is free', async () => {
    const slow = await createTestApp({ opencvWorkers: 1, requestTimeoutMs: 150 }, { resources: [createCannyResource()] });
    try {
      const res = await canny(slow, large);
      assert.equal(res.status, 504, JSON.stringify(res.body));
      assert.equal(res.body.code, 'REQUEST_TIMEOUT');
      await until(() => slow.engines.opencv.stats().running === 0, 'the abandoned Canny finishes');
      // A thumbnail normally takes a few ms; on a loaded machine even that can pass 150 ms, so a
      // 504 on it is retried. A worker left stuck by the abandoned Canny would fail every attempt.
      const thumbnail = await sharp(jpeg).resize(32, 24).jpeg().toBuffer();
      const statuses: number[] = [];
      for (let attempt = 0; attempt < 5 && statuses.at(-1) !== 200; attempt++) statuses.push((await canny(slow, thumbnail)).status);
      assert.equal(statuses.at(-1), 200, `statuses: ${statuses.join(', ')}`);
      assert.ok(statuses.every((s) => s === 200 || s === 504), `statuses: ${statuses.join(', ')}`);
    } finally {
      await slow.close();
    }
  });

  it('drops the queued work of a client that disconnects', async () => {
    const before = pool.stats();
    const busy = fetch(`${base}/sleepy?ms=600`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg) });
    await until(() => pool.stats().running === 1, 'the first request runs');
    const leaving = new AbortController();
    const gone = fetch(`${base}/sleepy?ms=10`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg), signal: leaving.signal });
    await until(() => pool.stats().queued === 1, 'the second request waits');
    leaving.abort();
    await assert.rejects(gone, { name: 'AbortError' });
    await until(() => pool.stats().queued === 0, 'the queued task is dropped');
    assert.equal(pool.stats().dropped, before.dropped + 1);
    const answer = await busy;
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { slept: 600 });
    assert.equal(pool.stats().completed, before.completed + 1, 'the dropped task never ran');
  });
});
