import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import { AppError } from '../../src/errors.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { createTestApp } from '../helpers/app.js';
import { Gate } from '../helpers/gates.js';
import { brief, listen, type Listening } from '../helpers/http.js';

/** Stand-ins behind the routes: detection answers at once, scene waits at a gate, super-resolution is always busy. */
function standIn(name: string, run: AnyResource['run']): AnyResource {
  return {
    name,
    summary: `stand-in ${name}`,
    params: z.strictObject({ labels: z.unknown().optional(), threshold: z.unknown().optional(), top: z.unknown().optional(), format: z.unknown().optional() }),
    output: { kind: 'json', schema: z.object({}).passthrough() },
    async init() {},
    status: () => ({ ready: true }),
    run,
    async close() {},
  };
}

const PNG_1X1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC', 'base64');

/** A multipart body sent chunked (no Content-Length), so only the streaming count can stop it. */
function chunkedMultipart(port: number, files: Buffer[]): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Record<string, unknown> }> {
  const boundary = 'dslimits42';
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/vision/detection', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Transfer-Encoding': 'chunked' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    files.forEach((file, i) => {
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="image${i}"; filename="f${i}.jpg"\r\n\r\n`);
      req.write(file);
      req.write('\r\n');
    });
    req.end(`--${boundary}--\r\n`);
  });
}

describe('DeepStack dialect: the service\'s limits, deadline and backpressure, answered in the dialect', () => {
  let svc: CvServe;
  let server: Listening;
  const gate = new Gate();

  const resources = (): AnyResource[] => [
    standIn('catdetection', async () => ({ kind: 'json', body: { status: 'ok', result: [] } })),
    standIn('predict', async (_input, _params, ctx) => {
      await gate.pass(ctx.signal);
      return { kind: 'json', body: { success: true, predictions: [{ label: 'late', probability: 1 }] } };
    }),
    standIn('upscale', async () => {
      throw new AppError('QUEUE_FULL', { headers: { 'Retry-After': '1' } });
    }),
  ];

  before(async () => {
    // The suite's app keeps the test apps' generous deadline: only the deadline test has a short one.
    svc = await createTestApp({ maxBodyBytes: 50_000, maxFields: 3, maxFieldBytes: 100, faceMaxImages: 3, opencvWorkers: 1 }, { resources: resources() });
    server = await listen(svc.handler);
  });
  after(async () => {
    gate.open();
    await server.close();
    await svc.close();
  });

  it('a chunked body of several files, each under CVSERVE_MAX_BODY_BYTES but together over it: 413 while streaming, connection closed', async () => {
    const file = Buffer.alloc(30_000, 7);
    const res = await chunkedMultipart(server.port, [file, file, file]);
    assert.equal(res.status, 413);
    assert.deepEqual(res.body, { success: false, error: 'Request body too large (CVSERVE_MAX_BODY_BYTES)', code: 413 });
    assert.equal(res.headers.connection, 'close');
    const ok = await chunkedMultipart(server.port, [PNG_1X1, PNG_1X1]);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('one file over CVSERVE_MAX_BODY_BYTES, more files than a register call takes, a long field, too many fields', async () => {
    const big = await request(svc.app).post('/v1/vision/detection').attach('image', Buffer.alloc(50_001, 1), 'big.jpg');
    assert.equal(big.status, 413, brief(big));
    assert.equal(big.body.code, 413);
    let many = request(svc.app).post('/v1/vision/face/register').field('userid', 'x');
    for (let i = 0; i < 4; i++) many = many.attach(`image${i}`, PNG_1X1, `f${i}.png`);
    const tooMany = await many;
    assert.deepEqual(tooMany.body, { success: false, error: 'At most 3 files in one request (CVSERVE_FACE_MAX_IMAGES)', code: 400 });
    const long = await request(svc.app).post('/v1/vision/detection').field('min_confidence', '0.'.padEnd(101, '5')).attach('image', PNG_1X1, 'a.png');
    assert.equal(long.status, 413, brief(long));
    assert.match(long.body.error, /min_confidence is too large/);
    const fields = await request(svc.app).post('/v1/vision/detection').field('a', '1').field('b', '2').field('c', '3').field('d', '4').attach('image', PNG_1X1, 'a.png');
    assert.deepEqual(fields.body, { success: false, error: 'Too many form fields', code: 400 });
    const query = await request(svc.app).post('/v1/vision/detection?a=1&b=2&c=3&d=4').attach('image', PNG_1X1, 'a.png');
    assert.equal(query.status, 400, brief(query));
    assert.match(query.body.error, /Too many query parameters/);
  });

  it('the request deadline (CVSERVE_REQUEST_TIMEOUT_MS): 504 in the dialect, and the work\'s signal aborted', async () => {
    // The stand-in never finishes (its gate stays shut): the deadline is the only way the request ends.
    // 2 s only bounds reading a 1x1 PNG before the stand-in starts; the answer does not depend on it.
    const timed = await createTestApp({ requestTimeoutMs: 2_000, opencvWorkers: 1 }, { resources: resources() });
    try {
      const res = await request(timed.app).post('/v1/vision/scene').attach('image', PNG_1X1, 'a.png');
      assert.deepEqual(res.body, { success: false, error: 'The request took too long', code: 504 });
      assert.equal(res.status, 504);
      assert.deepEqual([gate.entered, gate.aborted], [1, 1], 'the stand-in ran and saw its signal abort');
    } finally {
      await timed.close();
    }
  });

  it('busy: 503 with Retry-After, in the dialect', async () => {
    const res = await request(svc.app).post('/v1/image/superresolution').attach('image', PNG_1X1, 'a.png');
    assert.equal(res.status, 503, brief(res));
    assert.deepEqual(res.body, { success: false, error: 'Server busy, try again shortly', code: 503 });
    assert.equal(res.headers['retry-after'], '1');
  });
});
