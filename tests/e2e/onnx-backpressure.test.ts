import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import type { Config } from '../../src/config.js';
import { setDefaultBatchTimer } from '../../src/engines/onnx/batcher.js';
import { createPredictResource } from '../../src/resources/predict.js';
import { createTestApp } from '../helpers/app.js';
import { ManualBatchTimer } from '../helpers/clock.js';
import { brief } from '../helpers/http.js';
import { image } from '../helpers/paths.js';

/**
 * ONNX backpressure and dynamic batching over HTTP, on /predict with the real MobileNetV2 (its batch
 * dimension is free, so its requests go through the batcher). The batcher's wait runs on a manual
 * timer: a request waiting for company waits until the test ends the wait, so "the queue is full"
 * and "these requests share one batch" are states the test sets up, not races.
 */

const cat = readFileSync(image('cat_small.jpg'));
const predict = (svc: CvServe) => request(svc.app).post('/predict?top=3').set('Content-Type', 'image/jpeg').send(cat);

async function predictApp(overrides: Partial<Config>): Promise<{ svc: CvServe; timer: ManualBatchTimer }> {
  const timer = new ManualBatchTimer();
  // The engine builds the model's batcher while the app starts: with this timer.
  const restore = setDefaultBatchTimer(timer);
  try {
    const svc = await createTestApp({ onnxWorkers: 1, onnxThreads: 1, ...overrides }, { resources: [createPredictResource()] });
    assert.deepEqual(svc.resources[0]!.status(), { ready: true });
    return { svc, timer };
  } finally {
    restore();
  }
}

/** Tasks the model's pool has finished (batches, plus each worker's load task). */
const modelTasks = (svc: CvServe) => svc.engines.onnx.stats().reduce((n, s) => n + s.completed, 0);

describe('CVSERVE_ONNX_MAX_QUEUE and CVSERVE_ONNX_BATCH_WAIT_MS over HTTP', () => {
  let svc: CvServe;
  let timer: ManualBatchTimer;
  before(async () => {
    ({ svc, timer } = await predictApp({ onnxBatchMax: 3, onnxBatchWaitMs: 40, onnxMaxQueue: 1 }));
  });
  after(() => {
    timer.fire(); // whatever a failed test left waiting
    return svc.close();
  });

  it('a request waiting for its batch fills a queue of 1: the next gets 503 QUEUE_FULL at once', { timeout: 60_000 }, async () => {
    const waiting = predict(svc).then((r) => r);
    const first = await Promise.race([timer.whenWaiting().then(() => 'waiting for company'), waiting.then((r) => `answered ${brief(r)}`)]);
    assert.equal(first, 'waiting for company', 'with a batch wait configured, a lone request waits');
    assert.deepEqual(timer.delays, [40], 'the wait is CVSERVE_ONNX_BATCH_WAIT_MS');

    const refused = await predict(svc);
    assert.equal(refused.status, 503, brief(refused));
    assert.deepEqual(refused.body, { status: 'service unavailable', message: 'Server busy, try again shortly', code: 'QUEUE_FULL' });
    assert.equal(refused.headers['retry-after'], '1');

    timer.fire();
    const answer = await waiting;
    assert.equal(answer.status, 200, brief(answer));
    assert.equal(answer.body.predictions.length, 3);
    const metrics = (await request(svc.app).get('/metrics')).text;
    assert.match(metrics, /^cvserve_http_requests_total\{method="POST",route="\/predict",status="503"\} 1$/m);
  });
});

describe('CVSERVE_ONNX_BATCH_MAX over HTTP', () => {
  let svc: CvServe;
  let timer: ManualBatchTimer;
  before(async () => {
    ({ svc, timer } = await predictApp({ onnxBatchMax: 3, onnxBatchWaitMs: 40, onnxMaxQueue: 8 }));
  });
  after(() => {
    timer.fire();
    return svc.close();
  });

  it('three concurrent requests leave as one batch of 3 when it fills, with the answer a lone request gets', { timeout: 60_000 }, async () => {
    const alone = predict(svc).then((r) => r);
    await timer.whenWaiting();
    timer.fire();
    const reference = await alone;
    assert.equal(reference.status, 200, brief(reference));

    const before = modelTasks(svc);
    const answers = await Promise.all([0, 1, 2].map(() => predict(svc).then((r) => r)));
    for (const a of answers) {
      assert.equal(a.status, 200, brief(a));
      assert.deepEqual(a.body, reference.body);
    }
    assert.equal(modelTasks(svc) - before, 1, 'one session.run for the three');
    assert.equal(timer.outstanding, 0, 'the full batch ended its wait');
  });
});
