import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import type { PoolStats } from '../../src/engines/pool.js';
import { DecodeBudget } from '../../src/image/decode-memory.js';
import type { AnyResource, ServiceSet } from '../../src/resources/contract.js';
import { createCannyResource } from '../../src/resources/canny.js';
import { testConfig } from '../../src/config.js';
import { ModelStore } from '../../src/models/store.js';
import { createTestApp } from '../helpers/app.js';
import { MODELS_DIR } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

function pool(name: string, up: boolean, startupError?: string): PoolStats {
  return {
    name, id: 0, size: 1, running: 0, queued: 0, rejected: 0, dropped: 0, completed: 0, failed: 0, workers: up ? 1 : 0, up,
    ...(startupError && { startupError }), retired: 0, crashed: 0, heapBytes: 0, maxWorkerHeapBytes: 0, busySeconds: 0,
  };
}

/** Engines whose pools report what the test says, without starting any worker. */
function fakeEngines(opencv: PoolStats, onnx: PoolStats[] = []): ServiceSet {
  const config = testConfig({ modelsDir: MODELS_DIR, modelsFetch: false });
  const models = ModelStore.fromConfig(config);
  const decodeBudget = new DecodeBudget(config.decodeMemoryBytes);
  return { opencv: { stats: () => opencv, close: async () => {} }, onnx: { stats: () => onnx, close: async () => {} }, models, decodeBudget } as unknown as ServiceSet;
}

const waiting: AnyResource = {
  name: 'waiting',
  summary: 'never ready',
  params: z.strictObject({}),
  output: { kind: 'image' },
  async init() {},
  status: () => ({ ready: false, reason: 'model file yolo.onnx is missing' }),
  async run() {
    throw new Error('unreachable');
  },
  async close() {},
};

describe('/healthz and /readyz', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({ opencvWorkers: 1 }, { resources: [createCannyResource()] });
  });
  after(() => svc.close());

  it('/healthz answers 200 while the process is alive', async () => {
    const res = await request(svc.app).get('/healthz').expect(200);
    assert.deepEqual(res.body, { status: 'ok' });
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('/readyz answers 200 once the OpenCV pool is up', async () => {
    await until(async () => (await request(svc.app).get('/readyz')).status === 200, 'ready');
    const res = await request(svc.app).get('/readyz').expect(200);
    assert.deepEqual(res.body, { status: 'ready' });
  });

  it('/readyz answers 503 while shutting down, and answers close their connections', async () => {
    svc.lifecycle.beginShutdown();
    const res = await request(svc.app).get('/readyz').expect(503);
    assert.deepEqual(res.body, { status: 'not ready', missing: ['shutting down'] });
    assert.equal(res.headers.connection, 'close');
    // Liveness is unaffected: the process still serves its in-flight work.
    await request(svc.app).get('/healthz').expect(200);
  });
});

describe('/readyz lists what is missing', () => {
  const apps: CvServe[] = [];
  after(() => Promise.all(apps.map((a) => a.close())));

  it('names pools still starting or failing to start, and resources not ready', async () => {
    const engines = fakeEngines(pool('opencv', false), [pool('onnx:yolo', false, 'Error: /models/yolo.onnx: protobuf parsing failed'), pool('onnx:esrgan', true)]);
    const svc = await createTestApp({}, { engines, resources: [createCannyResource(), waiting] });
    apps.push(svc);
    const res = await request(svc.app).get('/readyz').expect(503);
    assert.deepEqual(res.body, {
      status: 'not ready',
      missing: ['worker pool opencv: starting', 'worker pool onnx:yolo: workers fail to start', '/waiting: model file yolo.onnx is missing'],
    });
    assert.doesNotMatch(res.text, /protobuf|\/models\//, 'startup errors stay in the log');
  });

  it('is ready when every pool is up and every resource ready', async () => {
    const svc = await createTestApp({}, { engines: fakeEngines(pool('opencv', true), [pool('onnx:esrgan', true)]), resources: [createCannyResource()] });
    apps.push(svc);
    await request(svc.app).get('/readyz').expect(200);
  });
});
