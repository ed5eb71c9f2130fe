import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createHttpServer } from '../../src/listen.js';
import { createTestApp } from '../helpers/app.js';

/** The HTTP server builds requests and responses with the app's prototypes, so Express never changes one. */
describe('requests born with the app prototypes', () => {
  let svc: CvServe;
  let server: Server;
  let base: string;
  const arrived: [boolean, boolean][] = [];

  before(async () => {
    svc = await createTestApp({}, { resources: [] }, { waitForWorkers: false });
    server = createHttpServer(svc, svc.config);
    // Before the app's own listener: what Node built, before Express saw it.
    server.prependListener('request', (req, res) => {
      arrived.push([Object.getPrototypeOf(req) === svc.app.request, Object.getPrototypeOf(res) === svc.app.response]);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await svc.close();
  });

  test('every request and response the server builds has them, and Express answers as before', async () => {
    const health = await fetch(`${base}/healthz`, { headers: { 'X-Request-Id': 'probe-7' } });
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('x-request-id'), 'probe-7');
    assert.ok(health.headers.get('content-security-policy'));
    const missing = await fetch(`${base}/nowhere`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code?: string }).code, 'NOT_FOUND');
    const dialect = await fetch(`${base}/v1/vision/detection`, { method: 'POST', body: new FormData() });
    assert.equal(dialect.status, 501);
    assert.equal(((await dialect.json()) as { success: boolean }).success, false);
    const ping = await fetch(`${base}/ping`);
    assert.deepEqual(await ping.json(), { success: true });
    assert.equal(arrived.length, 4);
    assert.deepEqual(new Set(arrived.flat()), new Set([true]));
  });

  test('the built objects are Node messages, initialised as Node initialises them', () => {
    const classes = svc.messageClasses;
    const socket = new net.Socket();
    const req = new classes.IncomingMessage(socket);
    assert.ok(req instanceof IncomingMessage);
    assert.equal(Object.getPrototypeOf(req), svc.app.request);
    assert.deepEqual(req.headers, {});
    assert.equal(req.socket, socket);
    const res = new classes.ServerResponse(req);
    assert.ok(res instanceof ServerResponse);
    assert.equal(Object.getPrototypeOf(res), svc.app.response);
    assert.equal(res.statusCode, 200);
    assert.equal(res.req, req);
    socket.destroy();
  });

  test('a request from another server (supertest) still gets Express through the chain', async () => {
    const res = await request(svc.app).get('/healthz').set('X-Request-Id', 'probe-8');
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-request-id'], 'probe-8');
    assert.equal(typeof svc.app.request.get, 'function');
  });
});
