import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createCannyResource } from '../../src/resources/canny.js';
import { createPredictResource } from '../../src/resources/predict.js';
import { createTestApp } from '../helpers/app.js';
import { image } from '../helpers/paths.js';

const jpeg = readFileSync(image('test_face_processing.jpg'));

/** The value of one sample line, e.g. `name{a="b"} 3`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  let a: CvServe;
  let b: CvServe;
  before(async () => {
    [a, b] = await Promise.all([
      createTestApp({ opencvWorkers: 1 }, { resources: [createCannyResource()] }),
      createTestApp({ opencvWorkers: 1 }, { resources: [createCannyResource()] }),
    ]);
  });
  after(() => Promise.all([a.close(), b.close()]));

  it('counts requests per route and status, with a latency histogram', async () => {
    await request(a.app).post('/canny').attach('image', jpeg, 'a.jpg').expect(200);
    await request(a.app).post('/canny').attach('image', jpeg, 'a.jpg').expect(200);
    await request(a.app).post('/canny?threshold1=-1').attach('image', jpeg, 'a.jpg').expect(400);
    await request(a.app).get('/no/such/route/12345').expect(404);
    await request(a.app).get('/ping').expect(200);
    const res = await request(a.app).get('/metrics').expect(200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const text = res.text;
    assert.equal(sample(text, 'cvserve_http_requests_total{method="POST",route="/canny",status="200"}'), 2);
    assert.equal(sample(text, 'cvserve_http_requests_total{method="POST",route="/canny",status="400"}'), 1);
    assert.equal(sample(text, 'cvserve_http_requests_total{method="GET",route="/ping",status="200"}'), 1);
    // Unknown paths share one label: clients cannot blow up the number of series.
    assert.equal(sample(text, 'cvserve_http_requests_total{method="GET",route="unmatched",status="404"}'), 1);
    assert.doesNotMatch(text, /no\/such\/route/);
    assert.equal(sample(text, 'cvserve_http_request_duration_seconds_count{method="POST",route="/canny",status="200"}'), 2);
    assert.equal(sample(text, 'cvserve_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/canny",status="200"}'), 2);
  });

  it('reports inference time per pool and op, and the pools\' queue, utilisation, rejections and heap', async () => {
    const text = (await request(a.app).get('/metrics').expect(200)).text;
    assert.equal(sample(text, 'cvserve_inference_seconds_count{pool="opencv",op="canny-jpeg",outcome="ok"}'), 2);
    assert.ok(sample(text, 'cvserve_inference_seconds_sum{pool="opencv",op="canny-jpeg",outcome="ok"}')! > 0);
    assert.equal(sample(text, 'cvserve_pool_size{pool="opencv"}'), 1);
    assert.equal(sample(text, 'cvserve_pool_workers{pool="opencv"}'), 1);
    assert.equal(sample(text, 'cvserve_pool_up{pool="opencv"}'), 1);
    assert.equal(sample(text, 'cvserve_pool_queue_depth{pool="opencv"}'), 0);
    assert.equal(sample(text, 'cvserve_pool_running{pool="opencv"}'), 0);
    assert.equal(sample(text, 'cvserve_pool_utilization{pool="opencv"}'), 0);
    assert.equal(sample(text, 'cvserve_pool_rejected_total{pool="opencv"}'), 0);
    assert.equal(sample(text, 'cvserve_pool_dropped_total{pool="opencv"}'), 0);
    assert.equal(sample(text, 'cvserve_pool_tasks_total{pool="opencv",outcome="completed"}'), 2);
    assert.equal(sample(text, 'cvserve_pool_worker_restarts_total{pool="opencv",reason="crashed"}'), 0);
    assert.equal(sample(text, 'cvserve_pool_heap_bytes{pool="opencv"}'), 128 * 1024 * 1024);
    assert.ok(sample(text, 'cvserve_pool_busy_seconds_total{pool="opencv"}')! > 0);
  });

  it('includes the default process metrics', async () => {
    const text = (await request(a.app).get('/metrics').expect(200)).text;
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.match(text, new RegExp(`^${name} `, 'm'), name);
    }
  });

  it('keeps each app\'s figures apart when several live in one process', async () => {
    const text = (await request(b.app).get('/metrics').expect(200)).text;
    assert.equal(sample(text, 'cvserve_inference_seconds_count{pool="opencv",op="canny-jpeg",outcome="ok"}'), undefined);
    assert.equal(sample(text, 'cvserve_http_requests_total{method="POST",route="/canny",status="200"}'), undefined);
    assert.equal(sample(text, 'cvserve_pool_tasks_total{pool="opencv",outcome="completed"}'), 0);
  });
});

describe('/metrics of ONNX models', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({ onnxWorkers: 1 }, { resources: [createPredictResource()] });
  });
  after(() => svc.close());

  it('counts model runs by the session that ran them', async () => {
    await request(svc.app).post('/predict').attach('image', jpeg, 'a.jpg').expect(200);
    const text = (await request(svc.app).get('/metrics').expect(200)).text;
    assert.equal(sample(text, 'cvserve_onnx_runs_total{pool="onnx:mobilenetv2-12-int8",session="all-threads"}'), 1);
    assert.equal(sample(text, 'cvserve_onnx_runs_total{pool="onnx:mobilenetv2-12-int8",session="busy-threads"}'), 0);
    assert.equal(sample(text, 'cvserve_onnx_runs_total{pool="opencv",session="all-threads"}'), undefined, 'ONNX pools only');
  });
});
