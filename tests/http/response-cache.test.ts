import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { ResponseCache } from '../../src/resources/answer-cache.js';
import type { Answer } from '../../src/resources/answer.js';
import { createTestApp } from '../helpers/app.js';
import { image } from '../helpers/paths.js';

const img = (n: number): Answer => ({ kind: 'image', bytes: Buffer.alloc(n, 7), format: 'png', contentType: 'image/png' });

describe('ResponseCache', () => {
  test('keys depend on route, parameters, Accept, input way and bytes, not on parameter order', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const k = ResponseCache.key('detect', { a: 1, b: 'x' }, '', 'multipart', bytes);
    assert.equal(ResponseCache.key('detect', { b: 'x', a: 1 }, '', 'multipart', bytes), k);
    assert.notEqual(ResponseCache.key('catfacedetection', { a: 1, b: 'x' }, '', 'multipart', bytes), k);
    assert.notEqual(ResponseCache.key('detect', { a: 2, b: 'x' }, '', 'multipart', bytes), k);
    assert.notEqual(ResponseCache.key('detect', { a: 1, b: 'x' }, 'image/png', 'multipart', bytes), k);
    assert.notEqual(ResponseCache.key('detect', { a: 1, b: 'x' }, '', 'json', bytes), k);
    assert.notEqual(ResponseCache.key('detect', { a: 1, b: 'x' }, '', 'multipart', new Uint8Array([1, 2, 4])), k);
  });

  test('evicts the least recently used entries to stay within its size, and skips oversized answers', () => {
    const c = new ResponseCache(1000);
    c.set('a', img(100));
    c.set('b', img(100));
    c.set('c', img(100));
    assert.ok(c.get('a')); // a is now the most recent
    for (let i = 0; i < 8; i++) c.set(`x${i}`, img(100));
    assert.equal(c.bytes, 1000);
    assert.equal(c.size, 10);
    assert.equal(c.get('b'), undefined, 'b was the least recently used');
    c.set('x8', img(100)); // order now: c, a, x0..x8 → c goes
    assert.equal(c.get('c'), undefined);
    assert.ok(c.get('a'), 'a was used more recently than c');
    c.set('huge', img(200)); // more than an eighth of the cache
    assert.equal(c.get('huge'), undefined);
    c.set('json', { kind: 'json', body: { status: 'ok', result: [] } });
    assert.deepEqual(c.get('json'), { kind: 'json', body: { status: 'ok', result: [] } });
  });
});

describe('response cache through HTTP', () => {
  let cached: CvServe;
  let plain: CvServe;
  const face = () => readFileSync(image('test_face_processing.jpg'));
  before(async () => {
    cached = await createTestApp({ responseCacheMb: 16 });
    plain = await createTestApp();
  });
  after(async () => {
    await cached.close();
    await plain.close();
  });

  test('a repeated detection is answered from the cache with the same body', async () => {
    const first = await request(cached.app).post('/detect').attach('image', face(), 'face.jpg');
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-cache'], 'miss');
    assert.equal(first.body.result.length, 17);
    const second = await request(cached.app).post('/detect').attach('image', face(), 'face.jpg');
    assert.equal(second.headers['x-cache'], 'hit');
    assert.deepEqual(second.body, first.body);
    const other = await request(cached.app).post('/detect?minNeighbors=3').attach('image', face(), 'face.jpg');
    assert.equal(other.headers['x-cache'], 'miss', 'other parameters, other answer');
  });

  test('image answers come back byte for byte, and JSON requests get their own entry', async () => {
    const a = await request(cached.app).post('/canny?format=png').attach('image', face(), 'face.jpg');
    const b = await request(cached.app).post('/canny?format=png').attach('image', face(), 'face.jpg');
    assert.deepEqual([a.headers['x-cache'], b.headers['x-cache']], ['miss', 'hit']);
    assert.equal(b.type, 'image/png');
    assert.ok((b.body as Buffer).equals(a.body as Buffer));
    const json = await request(cached.app).post('/canny').send({ imageBase64: face().toString('base64'), format: 'png' });
    assert.equal(json.headers['x-cache'], 'miss');
    assert.ok(Buffer.from(json.body.imageBase64, 'base64').equals(a.body as Buffer));
  });

  test('is off by default', async () => {
    const res = await request(plain.app).post('/canny').attach('image', face(), 'face.jpg');
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-cache'], undefined);
  });
});
