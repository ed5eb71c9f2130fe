import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { createCannyResource } from '../../src/resources/canny.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { pngDeclaring } from '../helpers/forge.js';
import { image } from '../helpers/paths.js';

/** A resource that fails in an unexpected way, to see what a 500 looks like. */
const exploding: AnyResource = {
  name: 'explode',
  summary: 'always fails',
  params: z.strictObject({}),
  output: { kind: 'image' },
  async init() {},
  status: () => ({ ready: true }),
  async run() {
    throw new Error('secret internal detail /etc/passwd');
  },
  async close() {},
};

const offline: AnyResource = { ...exploding, name: 'offline', status: () => ({ ready: false, reason: 'model.onnx missing in /models' }) };

describe('error answers', () => {
  let svc: CvServe;
  const jpeg = readFileSync(image('test_face_processing.jpg'));

  before(async () => {
    svc = await createTestApp({ maxBodyBytes: 200_000, maxPixels: 4_000_000 }, { resources: [createCannyResource(), exploding, offline] });
  });
  after(() => svc.close());

  function expectError(res: request.Response, status: number, code: string, message?: RegExp) {
    assert.equal(res.status, status, brief(res));
    assert.equal(res.type, 'application/json');
    assert.deepEqual(Object.keys(res.body).sort(), ['code', 'message', 'status']);
    assert.equal(res.body.code, code);
    assert.equal(typeof res.body.status, 'string');
    if (message) assert.match(res.body.message, message);
    assert.doesNotMatch(JSON.stringify(res.body), /at .*\.(ts|js):\d+|stack/i);
  }

  const cases: [string, () => request.Test, number, string, RegExp?][] = [
    ['an out-of-range parameter names it', () => request(svc.app).post('/canny?threshold1=-5').attach('image', jpeg, 'a.jpg'), 400, 'BAD_PARAMETER', /threshold1/],
    ['a non-numeric parameter names it', () => request(svc.app).post('/canny?threshold2=high').attach('image', jpeg, 'a.jpg'), 400, 'BAD_PARAMETER', /threshold2/],
    ['an unknown parameter names it', () => request(svc.app).post('/canny?treshold1=5').attach('image', jpeg, 'a.jpg'), 400, 'BAD_PARAMETER', /treshold1/],
    ['a bad format names it', () => request(svc.app).post('/canny?format=bmp').attach('image', jpeg, 'a.jpg'), 400, 'BAD_PARAMETER', /format/],
    ['a repeated parameter', () => request(svc.app).post('/canny?format=png&format=jpeg').attach('image', jpeg, 'a.jpg'), 400, 'BAD_PARAMETER', /more than once/],
    ['GET without url', () => request(svc.app).get('/canny'), 400, 'MISSING_IMAGE', /url/],
    ['POST without a body', () => request(svc.app).post('/canny'), 400, 'MISSING_IMAGE'],
    ['the wrong multipart field', () => request(svc.app).post('/canny').attach('file', jpeg, 'a.jpg'), 400, 'MISSING_IMAGE', /"image"/],
    ['two files', () => request(svc.app).post('/canny').attach('image', jpeg, 'a.jpg').attach('image', jpeg, 'b.jpg'), 400, 'BAD_MULTIPART'],
    ['JSON without imageBase64', () => request(svc.app).post('/canny').send({ image: 'x' }), 400, 'MISSING_IMAGE', /imageBase64/],
    ['invalid base64', () => request(svc.app).post('/canny').send({ imageBase64: '%%%not base64%%%' }), 400, 'INVALID_BASE64'],
    ['invalid JSON', () => request(svc.app).post('/canny').set('Content-Type', 'application/json').send('{"imageBase64": '), 400, 'INVALID_JSON'],
    ['a JSON array', () => request(svc.app).post('/canny').send([1, 2]), 400, 'INVALID_JSON'],
    ['an ftp: URL', () => request(svc.app).get('/canny?url=ftp://example.com/a.jpg'), 400, 'INVALID_URL'],
    ['an unknown route', () => request(svc.app).get('/nowhere'), 404, 'NOT_FOUND'],
    ['a body over the byte limit (raw)', () => request(svc.app).post('/canny').set('Content-Type', 'image/jpeg').send(Buffer.alloc(300_000, 1)), 413, 'PAYLOAD_TOO_LARGE'],
    ['a body over the byte limit (multipart)', () => request(svc.app).post('/canny').attach('image', Buffer.alloc(300_000, 1), 'big.jpg'), 413, 'PAYLOAD_TOO_LARGE'],
    ['a body over the byte limit (JSON)', () => request(svc.app).post('/canny').send({ imageBase64: 'A'.repeat(300_000) }), 413, 'PAYLOAD_TOO_LARGE'],
    ['a PNG declaring 50000x50000 pixels', () => request(svc.app).post('/canny').set('Content-Type', 'image/png').send(pngDeclaring(50_000, 50_000)), 413, 'IMAGE_TOO_LARGE', /50000x50000/],
    ['a text file named .jpg', () => request(svc.app).post('/canny').attach('image', Buffer.from('just some text, not an image'), 'photo.jpg'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['an SVG', () => request(svc.app).post('/canny').attach('image', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>'), 'a.jpg'), 415, 'UNSUPPORTED_MEDIA_TYPE', /SVG/],
    ['a text/plain body', () => request(svc.app).post('/canny').set('Content-Type', 'text/plain').send('hello'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a zero-byte upload', () => request(svc.app).post('/canny').attach('image', Buffer.alloc(0), 'empty.jpg'), 422, 'UNDECODABLE_IMAGE', /empty/],
    ['a truncated JPEG', () => request(svc.app).post('/canny').attach('image', jpeg.subarray(0, Math.floor(jpeg.length / 3)), 'cut.jpg'), 422, 'UNDECODABLE_IMAGE'],
    ['a JPEG magic number followed by junk', () => request(svc.app).post('/canny').set('Content-Type', 'image/jpeg').send(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 7)])), 422, 'UNDECODABLE_IMAGE'],
    ['an unexpected failure (no detail leaks)', () => request(svc.app).post('/explode').attach('image', jpeg, 'a.jpg'), 500, 'INTERNAL', /^Internal server error$/],
    ['a route whose model is missing', () => request(svc.app).post('/offline').attach('image', jpeg, 'a.jpg'), 503, 'MODEL_UNAVAILABLE', /model\.onnx/],
  ];

  for (const [name, send, status, code, message] of cases) {
    it(`${status} ${code}: ${name}`, async () => {
      expectError(await send(), status, code, message);
    });
  }

  it('405 with an Allow header for a wrong method', async () => {
    const res = await request(svc.app).delete('/canny');
    expectError(res, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(res.headers.allow, 'GET, POST');
    const ping = await request(svc.app).post('/ping');
    expectError(ping, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(ping.headers.allow, 'GET');
  });

  it('returns the request id it was given, or a new one', async () => {
    const given = await request(svc.app).get('/ping').set('X-Request-Id', 'abc-123');
    assert.equal(given.headers['x-request-id'], 'abc-123');
    const fresh = await request(svc.app).get('/ping');
    assert.match(fresh.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  });

  it('still answers a normal request after all of that', async () => {
    const res = await request(svc.app).post('/canny').attach('image', jpeg, 'a.jpg');
    assert.equal(res.status, 200);
    assert.equal(res.type, 'image/jpeg');
  });
});
