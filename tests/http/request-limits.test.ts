import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { testConfig, type Config } from '../../src/config.js';
import { startServer } from '../../src/listen.js';
import { createTestApp } from '../helpers/app.js';
import { brief, parseRawAnswer } from '../helpers/http.js';
import { capturingLogger } from '../helpers/log.js';
import '../helpers/net.js';
import { image } from '../helpers/paths.js';

/** Issue 12's small ones: bodies refused before they are read, Expect: 100-continue, strict numbers, quiet and redacted logs. */

type Started = Awaited<ReturnType<typeof startServer>> & { port: number; dir: string };

async function start(overrides: Partial<Config>): Promise<Started> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-limits-'));
  const started = await startServer(
    testConfig({ host: '127.0.0.1', port: 0, logLevel: 'silent', modelsDir: dir, modelsFetch: false, opencvWorkers: 1, onnxWorkers: 1, onnxThreads: 1, ...overrides }),
  );
  return { ...started, port: (started.server.address() as AddressInfo).port, dir };
}

async function stop(s: Started): Promise<void> {
  s.server.closeAllConnections();
  await s.shutdown('test over');
  rmSync(s.dir, { recursive: true, force: true });
}

/**
 * Writes `head` (and then `body`, once the server says 100 Continue, when `continueWith` is given)
 * and resolves with everything read up to the end of the first final answer. The body is never
 * sent otherwise: a server that waited for it would leave this hanging (the test's timeout fails it).
 */
function exchange(port: number, head: string, continueWith?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    let sentBody = false;
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (continueWith && !sentBody && /^HTTP\/1\.1 100 Continue\r\n\r\n/.test(text)) {
        sentBody = true;
        socket.write(continueWith);
      }
      const final = text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const answer = parseRawAnswer(final);
      if (Number.isFinite(answer.status) && answer.body.length >= Number(answer.headers['content-length'] ?? Infinity)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.once('error', reject);
    socket.once('connect', () => socket.write(head));
  });
}

describe('bodies refused before they are read', { timeout: 60_000 }, () => {
  let s: Started;
  before(async () => {
    // The body time limit is far away: only an answer from the headers can end these exchanges.
    s = await start({ maxBodyBytes: 64 * 1024, bodyTimeoutMs: 600_000 });
  });
  after(() => stop(s));

  it('a declared Content-Length of 1 GiB with 3 bytes sent gets 413 at once, and the connection closes', async () => {
    const text = await exchange(s.port, 'POST /canny HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 1073741824\r\n\r\nabc');
    const answer = parseRawAnswer(text);
    assert.equal(answer.status, 413, text.slice(0, 300));
    assert.equal(answer.headers.connection, 'close');
    assert.equal(JSON.parse(answer.body).code, 'PAYLOAD_TOO_LARGE');
    assert.match(JSON.parse(answer.body).message, /1073741824 bytes is over the limit of 65536 bytes/);
  });

  it('a body a little over the limit, sent whole by a client that does not wait, gets its 413 (read and dropped, no reset)', async () => {
    const body = Buffer.alloc(64 * 1024 + 5000, 0xff);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: s.port, path: '/canny', method: 'POST', headers: { 'Content-Type': 'image/jpeg', 'Content-Length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(status, 413);
  });

  it('Expect: 100-continue: over the limit is refused without 100 Continue; within it the body is asked for and served', async () => {
    const refused = await exchange(s.port, 'POST /canny HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 524288000\r\nExpect: 100-continue\r\n\r\n');
    assert.doesNotMatch(refused, /100 Continue/);
    assert.equal(parseRawAnswer(refused).status, 413);

    const jpeg = readFileSync(image('test_face_processing.jpg')).subarray(0, 60_000); // within 64 KiB; truncated, so a clean 422
    const served = await exchange(s.port, `POST /canny HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\nExpect: 100-continue\r\n\r\n`, jpeg);
    assert.match(served, /^HTTP\/1\.1 100 Continue\r\n\r\n/);
    assert.equal(parseRawAnswer(served.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')).status, 422);

    const odd = await exchange(s.port, 'POST /canny HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 10\r\nExpect: something-else\r\n\r\n');
    assert.equal(parseRawAnswer(odd).status, 417);
    assert.equal(JSON.parse(parseRawAnswer(odd).body).code, 'EXPECTATION_FAILED');
  });
});

describe('compressed bodies, strict numbers, quiet logs', () => {
  const captured = capturingLogger('info');
  let svc: Awaited<ReturnType<typeof createTestApp>>;
  const photo = readFileSync(image('test_face_processing.jpg'));
  before(async () => {
    svc = await createTestApp({ logLevel: 'info', allowPrivateNetworks: true, urlTimeoutMs: 2000 }, { logger: captured.log });
  });
  after(() => svc.close());

  it('a gzip or deflate body is 415 UNSUPPORTED_ENCODING, JSON or raw, never a 500', async () => {
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const raw = await request(svc.app).post('/canny').set('Content-Type', 'image/jpeg').set('Content-Encoding', encoding).send(gzipSync(photo));
      assert.equal(raw.status, 415, brief(raw));
      assert.equal(raw.body.code, 'UNSUPPORTED_ENCODING');
      const json = await request(svc.app).post('/canny').set('Content-Type', 'application/json').set('Content-Encoding', encoding).send(gzipSync(JSON.stringify({ imageBase64: 'AAAA' })));
      assert.equal(json.status, 415, brief(json));
    }
  });

  it('numbers are plain decimals: empty, hex and underflow are 400 naming the parameter; 1e2 is 100', async () => {
    for (const [value, message] of [
      ['', /threshold1 must be a number, not empty/],
      ['0x10', /threshold1 must be a decimal number \(got "0x10"\)/],
      ['1e-400', /threshold1 must be a decimal number \(got "1e-400"\)/],
      ['Infinity', /threshold1 must be a decimal number/],
    ] as const) {
      const res = await request(svc.app).post(`/canny?threshold1=${encodeURIComponent(value)}`).set('Content-Type', 'image/jpeg').send(photo);
      assert.equal(res.status, 400, `${value}: ${brief(res)}`);
      assert.match(res.body.message, message);
    }
    const ok = await request(svc.app).post('/canny?threshold1=1e2&format=png').set('Content-Type', 'image/jpeg').send(photo);
    assert.equal(ok.status, 200, brief(ok));
  });

  it('client-caused errors are logged at info without a stack, and a ?url= query string never reaches the log', async () => {
    const before = captured.lines().length;
    const bad = await request(svc.app).post('/canny?threshold1=x').set('Content-Type', 'image/jpeg').send(photo);
    assert.equal(bad.status, 400);
    // A closed loopback port: the fetch fails (502), its detail names the URL.
    const secretUrl = 'http://127.0.0.1:9/photo.jpg?X-Amz-Signature=SECRETSIGNATURE&token=SECRETTOKEN';
    const fetched = await request(svc.app).get('/canny').query({ url: secretUrl });
    assert.equal(fetched.status, 502, brief(fetched));
    const entries = captured.lines().slice(before);
    const refusals = entries.filter((e) => typeof e.msg === 'string' && e.msg.startsWith('request refused'));
    assert.ok(refusals.length >= 2, `${refusals.length} refusals logged`);
    for (const e of entries) {
      assert.ok(e.level <= 30, `logged at ${e.level}: ${e.msg}`);
      assert.equal(JSON.stringify(e).includes('"stack"'), false, `a stack in: ${e.msg}`);
    }
    const text = captured.text();
    assert.equal(text.includes('SECRETSIGNATURE') || text.includes('SECRETTOKEN'), false, 'the query string was logged');
    assert.ok(text.includes('127.0.0.1:9/photo.jpg?…'), 'the redacted URL is there');
  });
});
