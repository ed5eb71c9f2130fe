import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createTestApp } from '../helpers/app.js';

/** The /ping fast path (what the HTTP server runs) must answer exactly like the Express route. */
describe('/ping fast path', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({ apiKeys: ['k-123456789012345678901234'] } as never, { resources: [] });
  });
  after(() => svc.close());

  const comparable = (headers: Record<string, string>) => {
    const { date, etag, 'x-request-id': _id, connection, 'keep-alive': _ka, ...rest } = headers;
    void date;
    void etag;
    void connection;
    return rest;
  };

  test('same status, body and headers as the Express route, without an API key', async () => {
    const slow = await request(svc.app).get('/ping');
    const fast = await request(svc.handler).get('/ping');
    assert.equal(fast.status, 200);
    assert.deepEqual(fast.body, { success: true });
    assert.equal(fast.text, slow.text);
    assert.deepEqual(comparable(fast.headers), comparable(slow.headers));
    assert.match(fast.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
    assert.ok(fast.headers['content-security-policy'], 'security headers are there');
  });

  test('keeps a well-formed X-Request-Id, answers HEAD without a body, and is counted in /metrics', async () => {
    const res = await request(svc.handler).get('/ping').set('X-Request-Id', 'probe-1');
    assert.equal(res.headers['x-request-id'], 'probe-1');
    const head = await request(svc.handler).head('/ping');
    assert.equal(head.status, 200);
    assert.equal(head.text, undefined);
    const metrics = await request(svc.handler).get('/metrics').set('X-API-Key', 'k-123456789012345678901234');
    assert.equal(metrics.status, 200, metrics.text);
    assert.match(metrics.text, /cvserve_http_requests_total\{method="GET",route="\/ping",status="200"\} [1-9]/);
  });

  test('everything else still goes through Express', async () => {
    assert.equal((await request(svc.handler).post('/ping')).status, 405);
    assert.equal((await request(svc.handler).get('/ping?x=1')).status, 200);
    assert.equal((await request(svc.handler).get('/nowhere')).status, 401, 'the API key check still applies off the fast path');
  });

  test('answers Connection: close while draining', async () => {
    svc.lifecycle.beginShutdown();
    const res = await request(svc.handler).get('/ping');
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, 'close');
  });
});
