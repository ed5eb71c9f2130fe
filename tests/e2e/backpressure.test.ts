import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createCannyResource } from '../../src/resources/canny.js';
import { createTestApp } from '../helpers/app.js';
import { appWithHeldOpenCv, type HeldOpenCv } from '../helpers/gates.js';
import { brief, listen, type Listening } from '../helpers/http.js';
import { image } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

/**
 * Backpressure, deadlines and disconnects over HTTP. The OpenCV work is held on its worker until
 * the test releases it (tests/helpers/gates.ts): "the worker is busy", "the queue is full", "the
 * work outlasts the deadline" are states the test sets up, whatever the speed of the machine.
 */

let jpeg: Buffer;
before(async () => {
  jpeg = await sharp(image('test_face_processing.jpg')).resize(96, 72).jpeg().toBuffer();
});

const canny = (svc: CvServe) => request(svc.app).post('/canny?format=png').set('Content-Type', 'image/jpeg').send(jpeg);
const BUSY = { status: 'service unavailable', message: 'Server busy, try again shortly', code: 'QUEUE_FULL' };
const TIMED_OUT = { status: 'gateway timeout', message: 'The request took too long', code: 'REQUEST_TIMEOUT' };

describe('backpressure: a full queue answers 503 with Retry-After at once', () => {
  let held: Awaited<ReturnType<typeof appWithHeldOpenCv>>;
  before(async () => {
    held = await appWithHeldOpenCv({}, { resources: [createCannyResource()], size: 1, maxQueue: 1 });
  });
  after(() => held.close());

  it('refuses a request beyond worker + queue while both are still full, then serves again', async () => {
    const { svc, opencv } = held;
    const stats = () => opencv.stats();
    const first = canny(svc).then((r) => r);
    await opencv.running(0);
    const second = canny(svc).then((r) => r);
    await opencv.whenCalled(2);
    assert.deepEqual([stats().running, stats().queued], [1, 1]);

    const refused = await canny(svc);
    assert.equal(refused.status, 503, brief(refused));
    assert.deepEqual(refused.body, BUSY);
    assert.equal(refused.headers['retry-after'], '1');
    // Refused at once: the first is still on the worker and the second still waits.
    assert.deepEqual([stats().running, stats().queued, stats().rejected], [1, 1, 1]);

    opencv.release(0);
    await opencv.running(1);
    opencv.release(1);
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.equal(a.type, 'image/png');
    const meta = await sharp(a.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 72]);

    opencv.letThrough();
    const again = await canny(svc);
    assert.equal(again.status, 200, brief(again));
    assert.deepEqual([stats().running, stats().queued, stats().rejected, stats().completed], [0, 0, 1, 3]);

    const metrics = (await request(svc.app).get('/metrics')).text;
    assert.match(metrics, /^cvserve_pool_rejected_total\{pool="opencv"\} 1$/m);
    assert.match(metrics, /^cvserve_http_requests_total\{method="POST",route="\/canny",status="503"\} 1$/m);
  });
});

describe('CVSERVE_OPENCV_MAX_QUEUE reaches the real OpenCV engine', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({ opencvWorkers: 1, opencvMaxQueue: 1 }, { resources: [createCannyResource()] });
  });
  after(() => svc.close());

  it('with one worker and a queue of 1, a third task submitted at once is refused', async () => {
    // Three calls in one synchronous run: none can have finished before the third is counted.
    const image = { data: new Uint8Array(16 * 16 * 3).fill(90), width: 16, height: 16, channels: 3 as const };
    const outcomes = [0, 1, 2].map(() =>
      svc.engines.opencv.canny(image, 100, 200).then(
        (edges) => `${edges.width}x${edges.height}`,
        (err: { code?: string }) => err.code,
      ),
    );
    assert.deepEqual(await Promise.all(outcomes), ['16x16', '16x16', 'QUEUE_FULL']);
    assert.equal(svc.engines.opencv.stats().rejected, 1);
  });
});

describe('request deadline and disconnects', () => {
  let held: Awaited<ReturnType<typeof appWithHeldOpenCv>>;
  let opencv: HeldOpenCv;
  let server: Listening;
  // The work is held until the deadline has passed, so only the steps before it (reading and
  // decoding a 96x72 JPEG) must fit in this time.
  const DEADLINE_MS = 1500;

  before(async () => {
    held = await appWithHeldOpenCv({ requestTimeoutMs: DEADLINE_MS }, { resources: [createCannyResource()], size: 1, maxQueue: 4 });
    opencv = held.opencv;
    server = await listen(held.svc.handler);
  });
  after(async () => {
    await server.close();
    await held.close();
  });

  it('answers 504 when the work outlasts the time limit, drops the task queued behind it, and recovers', async () => {
    const stats = () => opencv.stats();
    const running = canny(held.svc).then((r) => r);
    await opencv.running(0);
    const queued = canny(held.svc).then((r) => r);
    await opencv.whenCalled(2);
    for (const res of await Promise.all([running, queued])) {
      assert.equal(res.status, 504, brief(res));
      assert.deepEqual(res.body, TIMED_OUT);
    }
    // The queued task never reached a worker; the running one is not waited for...
    assert.deepEqual([stats().dropped, stats().running, stats().completed], [1, 1, 0]);
    // ...but its worker finishes it before taking the next task.
    opencv.release(0);
    await until(() => stats().running === 0, 'the abandoned task finishes');
    const next = canny(held.svc).then((r) => r);
    await opencv.running(2);
    opencv.release(2);
    const answer = await next;
    assert.equal(answer.status, 200, brief(answer));
    assert.deepEqual([stats().completed, stats().dropped], [2, 1]);
  });

  it('drops the queued work of a client that disconnects', async () => {
    const before = opencv.stats();
    const first = opencv.calls.length;
    const send = (signal?: AbortSignal) =>
      fetch(`${server.url}/canny?format=png`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(jpeg), signal });
    const busy = send();
    await opencv.running(first);
    const leaving = new AbortController();
    const gone = send(leaving.signal);
    await opencv.whenCalled(first + 2);
    assert.equal(opencv.stats().queued, 1);
    leaving.abort();
    await assert.rejects(gone, { name: 'AbortError' });
    await until(() => opencv.stats().queued === 0, 'the queued task is dropped');
    assert.equal(opencv.stats().dropped, before.dropped + 1);
    assert.equal(opencv.stats().running, 1, 'the first request still holds the worker');
    opencv.release(first);
    const answer = await busy;
    assert.equal(answer.status, 200);
    assert.equal((await sharp(Buffer.from(await answer.arrayBuffer())).metadata()).width, 96);
    assert.equal(opencv.stats().completed, before.completed + 1, 'the dropped task never ran');
  });
});
