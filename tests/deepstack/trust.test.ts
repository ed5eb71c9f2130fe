/**
 * What a hostile or broken client must not get from the service (issue 21): with keys on, a body is
 * not read past a wrong key (header or form field before the file), and bodies read before their
 * key is known are capped in total; cross-site writes and unknown hosts are refused; a bad
 * percent-encoding in a path is a 400; a client that stalls mid-body gets one answer, not a 504
 * and then a 408.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import { createHttpServer } from '../../src/listen.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { createTestApp } from '../helpers/app.js';
import { brief, wrap, type Listening } from '../helpers/http.js';
import { sizeResource, standInDetector } from '../helpers/resources.js';

const KEY = 'k-trust-7d1e0c';

let PNG: Buffer;

before(async () => {
  PNG = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#808080' } }).png().toBuffer();
});

/** A raw HTTP exchange: sends `head` and `body`, keeps the socket open, collects what comes back until it closes. */
function rawExchange(port: number, head: string, body: Buffer): { text: () => string; closed: Promise<void>; firstAnswer: Promise<string>; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  let answered!: (text: string) => void;
  const firstAnswer = new Promise<string>((resolve) => (answered = resolve));
  socket.on('data', (chunk) => {
    received += chunk.toString('latin1');
    if (/\r\n\r\n/.test(received)) answered(received);
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(head);
  socket.write(body);
  return { text: () => received, closed, firstAnswer, socket };
}

const BOUNDARY = 'trust21boundary';
const field = (name: string, value: string) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const fileHead = (name: string) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;

/** Headers of a multipart POST declaring `length` bytes (more than will be sent: the client stalls). */
const multipartHead = (path: string, length: number, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${length}\r\n${extra}\r\n`;

describe('with API keys on, a /v1 body is not held for a request without a valid key', () => {
  let svc: CvServe;
  let server: Listening;

  before(async () => {
    svc = await createTestApp(
      { apiKeys: [KEY], maxBodyBytes: 4 * 1024 * 1024, maxUnauthenticatedBodyBytes: 1024 * 1024 },
      { resources: [standInDetector()] },
      { waitForWorkers: false },
    );
    server = await wrap(createHttpServer(svc, svc.config).listen(0, '127.0.0.1'));
  });
  after(async () => {
    await server.close();
    await svc.close();
  });

  it('a wrong api_key field before the file: 401 at the file, the rest never read, the connection closed', async () => {
    const sent = Buffer.concat([Buffer.from(field('api_key', 'WRONG') + fileHead('image')), Buffer.alloc(256 * 1024, 1)]);
    const x = rawExchange(server.port, multipartHead('/v1/vision/detection', 3 * 1024 * 1024), sent);
    const answer = await x.firstAnswer; // before: no answer until the whole 3 MB body came
    assert.match(answer, /^HTTP\/1\.1 401 /);
    assert.match(answer, /Connection: close/i);
    await x.closed;
  });

  it('a wrong key in a header: 401 before any of the body is read', async () => {
    const x = rawExchange(server.port, multipartHead('/v1/vision/face/register', 3 * 1024 * 1024, 'X-API-Key: WRONG\r\n'), Buffer.from(field('userid', 'a')));
    assert.match(await x.firstAnswer, /^HTTP\/1\.1 401 /);
    await x.closed;
  });

  it('a file before the key: read only up to CVSERVE_MAX_UNAUTHENTICATED_BODY_BYTES (all such requests together), then 503', async () => {
    const sent = Buffer.concat([Buffer.from(fileHead('image')), Buffer.alloc(1536 * 1024, 1)]);
    const x = rawExchange(server.port, multipartHead('/v1/vision/detection', 3 * 1024 * 1024), sent);
    const answer = await x.firstAnswer;
    assert.match(answer, /^HTTP\/1\.1 503 /);
    assert.match(answer, /before their API key is known/);
    await x.closed;
  });

  it('a file before a valid key, within the budget, still works; so do a form key before the file and a header key', async () => {
    const late = await request(svc.app).post('/v1/vision/detection').attach('image', PNG, 'x.png').field('api_key', KEY);
    assert.equal(late.status, 200, brief(late));
    const early = await request(svc.app).post('/v1/vision/detection').field('api_key', KEY).attach('image', PNG, 'x.png');
    assert.equal(early.status, 200, brief(early));
    const header = await request(svc.app).post('/v1/vision/detection').set('X-API-Key', KEY).attach('image', PNG, 'x.png');
    assert.equal(header.status, 200, brief(header));
    const missing = await request(svc.app).post('/v1/vision/detection').attach('image', PNG, 'x.png');
    assert.equal(missing.status, 401, brief(missing));
  });
});

describe('one answer per request', () => {
  let svc: CvServe;
  let server: Listening;

  before(async () => {
    svc = await createTestApp({ requestTimeoutMs: 200, bodyTimeoutMs: 1000 }, { resources: [standInDetector(), sizeResource()] }, { waitForWorkers: false });
    server = await wrap(createHttpServer(svc, svc.config).listen(0, '127.0.0.1'));
  });
  after(async () => {
    await server.close();
    await svc.close();
  });

  for (const path of ['/v1/vision/detection', '/size']) {
    it(`${path}: a client that stalls mid-body gets the 504 and the connection ends (no 408 after it)`, async () => {
      const x = rawExchange(server.port, multipartHead(path, 100_000, 'Connection: keep-alive\r\n'), Buffer.from(fileHead('image') + 'partial'));
      await x.closed;
      const statuses = [...x.text().matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      assert.deepEqual(statuses, ['504']);
    });
  }
});

describe('cross-site requests and hosts', () => {
  let svc: CvServe;
  let allowing: CvServe;

  before(async () => {
    const resources = () => [standInDetector(), sizeResource()];
    svc = await createTestApp({ allowedHosts: ['cvserve.lan', '192.168.1.20'] }, { resources: resources() }, { waitForWorkers: false });
    allowing = await createTestApp({ corsOrigins: ['http://dashboard.lan:3000'] }, { resources: resources() }, { waitForWorkers: false });
  });
  after(async () => {
    await svc.close();
    await allowing.close();
  });

  const post = (app: CvServe, path: string, headers: Record<string, string>) => {
    let r = request(app.app).post(path).set('Host', 'cvserve.lan:8080');
    for (const [k, v] of Object.entries(headers)) r = r.set(k, v);
    return path.startsWith('/v1') ? r.field('userid', 'alice') : r.set('Content-Type', 'image/png').send(PNG);
  };

  it('a state-changing request from another site is refused (403 in each dialect); without browser headers it is not', async () => {
    const evil = { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' };
    const v1 = await post(svc, '/v1/vision/face/delete', evil);
    assert.equal(v1.status, 403, brief(v1));
    assert.deepEqual([v1.body.success, v1.body.code], [false, 403]);
    assert.match(v1.body.error, /Cross-site request refused/);
    const native = await post(svc, '/size', evil);
    assert.deepEqual([native.status, native.body.code], [403, 'CROSS_SITE_REQUEST'], brief(native));
    assert.equal((await post(svc, '/size', { Origin: 'http://evil.example' })).status, 403, 'an Origin alone is enough');
    assert.equal((await post(svc, '/size', { 'Sec-Fetch-Site': 'cross-site' })).status, 403, 'Sec-Fetch-Site alone is enough');
    assert.equal((await post(svc, '/size', {})).status, 200, 'a client that is not a browser');
    assert.notEqual((await post(svc, '/v1/vision/face/delete', {})).status, 403);
  });

  it('the playground (same origin, or same-origin by the browser behind a proxy) keeps working; an allowed CORS origin may write', async () => {
    assert.equal((await post(svc, '/size', { Origin: 'http://cvserve.lan:8080', 'Sec-Fetch-Site': 'same-origin' })).status, 200);
    assert.equal((await post(svc, '/size', { Origin: 'https://cv.example.com', 'Sec-Fetch-Site': 'same-origin' })).status, 200);
    assert.equal((await post(allowing, '/size', { Origin: 'http://dashboard.lan:3000', 'Sec-Fetch-Site': 'cross-site' })).status, 200);
    assert.equal((await post(allowing, '/size', { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' })).status, 403);
    assert.equal((await request(svc.app).get('/').set('Host', 'cvserve.lan').set('Sec-Fetch-Site', 'cross-site')).status, 200, 'reading a page is not writing');
  });

  it('CVSERVE_ALLOWED_HOSTS: another Host is refused with 421 (DNS rebinding), probes still answer', async () => {
    const other = await request(svc.app).get('/openapi.json').set('Host', 'rebind.evil.example');
    assert.deepEqual([other.status, other.body.code], [421, 'HOST_NOT_ALLOWED'], brief(other));
    const v1 = await request(svc.app).post('/v1/vision/face/list').set('Host', 'rebind.evil.example:8080');
    assert.deepEqual([v1.status, v1.body.success], [421, false], brief(v1));
    assert.equal((await request(svc.app).get('/openapi.json').set('Host', '192.168.1.20:32168')).status, 200);
    assert.equal((await request(svc.app).get('/healthz').set('Host', 'rebind.evil.example')).status, 200);
    assert.equal((await request(allowing.app).get('/openapi.json').set('Host', 'anything.example')).status, 200, 'default: any host');
  });

  it('a bad percent-encoding in a path is a 400, not a 500', async () => {
    const res = await request(svc.app).post('/v1/vision/custom/%E0%A4%A').set('Host', 'cvserve.lan');
    assert.equal(res.status, 400, brief(res));
    assert.match(res.body.error, /percent-encoding/);
  });
});
