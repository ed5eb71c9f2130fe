import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { answerClientErrorsAsJson } from '../../src/http/client-error.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { describeParams } from '../../src/resources/describe.js';
import { createTestApp } from '../helpers/app.js';
import { ConnectGuard, HOSTILE_HOST, hostileServer, payloads, tableLookup, type HostileServer, type Payloads } from '../helpers/hostile.js';
import { listen } from '../helpers/http.js';

/**
 * Every image route, every way of sending an image, every hostile input: each gets its JSON error
 * with the right code (or, for inputs that are valid by design, a normal answer), and the route
 * still answers a normal request correctly afterwards. Routes are read from the app, so routes
 * added later join the table by themselves.
 */

const LIMIT = 1 << 20; // body and download limit for these tests: 1 MiB
const WAYS = ['multipart', 'json', 'raw', 'url'] as const;
type Way = (typeof WAYS)[number];
type Expected = readonly [status: number, code: string] | 'ok';

interface PayloadCase {
  name: string;
  bytes: (p: Payloads) => Buffer;
  /** File name used in multipart: hostile files keep an image extension. */
  filename: string;
  expect: Expected;
  /** Per-way exceptions. */
  ways?: Partial<Record<Way, Expected>>;
}

const PAYLOAD_CASES: PayloadCase[] = [
  { name: 'zero bytes', bytes: () => Buffer.alloc(0), filename: 'empty.jpg', expect: [422, 'UNDECODABLE_IMAGE'], ways: { json: [400, 'INVALID_BASE64'] } },
  { name: 'a truncated JPEG', bytes: (p) => p.truncatedJpeg, filename: 'half.jpg', expect: [422, 'UNDECODABLE_IMAGE'] },
  { name: 'a truncated PNG', bytes: (p) => p.truncatedPng, filename: 'half.png', expect: [422, 'UNDECODABLE_IMAGE'] },
  { name: 'a truncated WebP', bytes: (p) => p.truncatedWebp, filename: 'half.webp', expect: [422, 'UNDECODABLE_IMAGE'] },
  { name: 'text with an image extension', bytes: (p) => p.notAnImage, filename: 'photo.jpg', expect: [415, 'UNSUPPORTED_MEDIA_TYPE'] },
  { name: 'an SVG with external references and an XXE entity', bytes: (p) => p.svg, filename: 'evil.png', expect: [415, 'UNSUPPORTED_MEDIA_TYPE'] },
  { name: 'a PNG declaring 50000x50000 pixels', bytes: (p) => p.pngBomb, filename: 'bomb.png', expect: [413, 'IMAGE_TOO_LARGE'] },
  { name: 'a JPEG declaring 65000x65000 pixels', bytes: (p) => p.jpegBomb, filename: 'bomb.jpg', expect: [413, 'IMAGE_TOO_LARGE'] },
  // Valid by design: only the first frame is decoded, so thousands of frames cost nothing.
  { name: 'a GIF with 4000 frames', bytes: (p) => p.gif, filename: 'many.gif', expect: 'ok' },
];

function expectError(res: request.Response | { status: number; type: string; body: unknown; text: string }, status: number, code: string, what: string): void {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.text?.slice(0, 300)}`);
  assert.equal(res.type, 'application/json', what);
  const body = res.body as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['code', 'message', 'status'], what);
  assert.equal(body.code, code, what);
  assert.doesNotMatch(res.text, /at .*\.(ts|js):\d+|stack|\/work\//i, `${what}: no internals in the answer`);
}

function expectOk(res: request.Response, resource: AnyResource, what: string): void {
  assert.equal(res.status, 200, `${what}: ${res.status} ${res.text?.slice(0, 300)}`);
  if (resource.output.kind === 'json' && res.type === 'application/json') {
    const parsed = resource.output.schema.safeParse(res.body);
    assert.ok(parsed.success, `${what}: the answer matches /${resource.name}'s schema: ${JSON.stringify(res.body).slice(0, 300)}`);
  } else {
    assert.match(res.type, /^image\/(jpeg|png|webp)$|^application\/json$/, what);
  }
}

describe('hostile input', () => {
  let svc: CvServe;
  let p: Payloads;
  let server: HostileServer;
  const guard = new ConnectGuard();
  let routes: AnyResource[];

  before(async () => {
    p = await payloads();
    server = await hostileServer({ jpeg: p.good, oversize: LIMIT * 4 });
    const lookup = tableLookup({
      'images.test': HOSTILE_HOST,
      localhost: '127.0.0.1',
      'metadata.google.internal': '169.254.169.254',
      'internal.test': '10.0.0.7',
      'rebind.test': ['93.184.216.34', '10.0.0.1'],
      'v6-private.test': 'fd12:3456::1',
    });
    svc = await createTestApp(
      { maxBodyBytes: LIMIT, urlMaxBytes: LIMIT, opencvWorkers: 1, onnxWorkers: 1, onnxThreads: 1 },
      // Only the hostile server's own address is exempt from the address rule; 127.0.0.1 itself is not.
      { urlHooks: { lookup, onConnect: guard.hook, allowAddresses: [HOSTILE_HOST] } },
    );
    routes = svc.resources;
    const notReady = routes.filter((r) => !r.status().ready).map((r) => `/${r.name}: ${(r.status() as { reason?: string }).reason}`);
    assert.deepEqual(notReady, [], 'every route is ready, so every route is covered');
    for (const c of PAYLOAD_CASES) server.serve(slug(c.name), c.bytes(p));
    server.serve('good', p.good);
  });
  after(async () => {
    await svc.close();
    await server.close();
    assert.deepEqual(guard.attempts.filter((a) => !a.startsWith(`${HOSTILE_HOST}:`)), [], 'no connection was attempted anywhere but the hostile server');
  });

  const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  const post = (r: AnyResource, query = '') => request(svc.app).post(`/${r.name}${query}`);
  const get = (r: AnyResource, url: string) => request(svc.app).get(`/${r.name}?url=${encodeURIComponent(url)}`);

  function send(r: AnyResource, way: Way, bytes: Buffer, filename: string, caseName: string): request.Test {
    switch (way) {
      case 'multipart':
        return post(r).attach('image', bytes, filename);
      case 'json':
        return post(r).send({ imageBase64: bytes.toString('base64') });
      case 'raw':
        return post(r).set('Content-Type', 'image/jpeg').send(bytes);
      case 'url':
        return get(r, server.url(`/payload/${slug(caseName)}`));
    }
  }

  async function answersNormally(r: AnyResource, after: string): Promise<void> {
    const res = await post(r).attach('image', p.good, 'good.jpg');
    expectOk(res, r, `/${r.name} after ${after}`);
  }

  const waysOf = (r: AnyResource) => WAYS.filter((w) => w !== 'url' || (r.methods ?? ['GET', 'POST']).includes('GET'));

  it('every image input way, every route: bad bytes get their error, and the route keeps working', async () => {
    for (const r of routes) {
      for (const way of waysOf(r)) {
        for (const c of PAYLOAD_CASES) {
          const what = `/${r.name} ${way}: ${c.name}`;
          const expected = c.ways?.[way] ?? c.expect;
          // Bombs get IMAGE_TOO_LARGE: the refusal the header check gives (a decoder run would fail otherwise).
          const res = await send(r, way, c.bytes(p), c.filename, c.name);
          if (expected === 'ok') expectOk(res, r, what);
          else expectError(res, expected[0], expected[1], what);
        }
        await answersNormally(r, `hostile ${way} bodies`);
      }
    }
  });

  it('JSON bodies: garbage base64, whitespace-wrapped base64 (accepted), invalid JSON, far over the limit', async () => {
    for (const r of routes) {
      const what = (s: string) => `/${r.name}: ${s}`;
      expectError(await post(r).send({ imageBase64: '!!!*** not base64 ***!!!' }), 400, 'INVALID_BASE64', what('garbage base64'));
      expectError(await post(r).send({ imageBase64: `${p.good.toString('base64').slice(0, 200)}@@@${p.good.toString('base64').slice(200)}` }), 400, 'INVALID_BASE64', what('base64 with garbage inside'));
      const wrapped = p.good.toString('base64').replace(/.{76}/g, '$&\r\n');
      expectOk(await post(r).send({ imageBase64: `\n  ${wrapped}\n` }), r, what('MIME-wrapped base64'));
      expectError(await post(r).set('Content-Type', 'application/json').send('{"imageBase64": "abc'), 400, 'INVALID_JSON', what('truncated JSON'));
      expectError(await post(r).set('Content-Type', 'application/json').send('[1, 2, 3]'), 400, 'INVALID_JSON', what('a JSON array'));
      expectError(await post(r).send({ imageBase64: 12345 }), 400, 'INVALID_BASE64', what('a number as imageBase64'));
      expectError(await post(r).send({ imageBase64: 'A'.repeat(LIMIT * 8) }), 413, 'PAYLOAD_TOO_LARGE', what('JSON 8x over the limit'));
      expectError(await post(r).set('Content-Type', 'image/jpeg').send(Buffer.alloc(LIMIT * 8, 0xff)), 413, 'PAYLOAD_TOO_LARGE', what('raw body 8x over the limit'));
      await answersNormally(r, 'hostile JSON');
    }
  });

  it('multipart: wrong field, two files, a huge text field, a file over the limit', async () => {
    for (const r of routes) {
      const what = (s: string) => `/${r.name}: ${s}`;
      expectError(await post(r).attach('file', p.good, 'a.jpg'), 400, 'MISSING_IMAGE', what('wrong field'));
      expectError(await post(r).attach('image', p.good, 'a.jpg').attach('image', p.good, 'b.jpg'), 400, 'BAD_MULTIPART', what('two files'));
      expectError(await post(r).field('note', 'x'.repeat(LIMIT)).attach('image', p.good, 'a.jpg'), 413, 'PAYLOAD_TOO_LARGE', what('a 1 MiB text field'));
      expectError(await post(r).attach('image', Buffer.alloc(LIMIT * 8, 0xd8), 'big.jpg'), 413, 'PAYLOAD_TOO_LARGE', what('a file 8x over the limit'));
      expectError(
        await post(r).set('Content-Type', 'multipart/form-data; boundary=xyz').send('--xyz\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc'),
        400,
        'BAD_MULTIPART',
        what('an unterminated multipart body'),
      );
      await answersNormally(r, 'hostile multipart');
    }
  });

  it('parameters: out of range, not a number, unknown, repeated', async () => {
    assert.ok(routes.length >= 7, `${routes.length} routes`);
    let numericChecked = 0;
    for (const r of routes) {
      const what = (s: string) => `/${r.name}: ${s}`;
      const numeric = describeParams(r.params).filter((d) => d.schema.type === 'number' || d.schema.type === 'integer');
      numericChecked += numeric.length;
      for (const d of numeric) {
        if (typeof d.schema.maximum === 'number') {
          const over = d.schema.maximum + Math.max(1, Math.abs(d.schema.maximum));
          expectError(await post(r, `?${d.name}=${over}`).attach('image', p.good, 'a.jpg'), 400, 'BAD_PARAMETER', what(`${d.name}=${over}`));
        }
        if (typeof d.schema.minimum === 'number') {
          const under = d.schema.minimum - Math.max(1, Math.abs(d.schema.minimum));
          expectError(await post(r, `?${d.name}=${under}`).attach('image', p.good, 'a.jpg'), 400, 'BAD_PARAMETER', what(`${d.name}=${under}`));
        }
        for (const junk of ['abc', 'NaN', 'Infinity', '-Infinity', '1e999', '12abc', '']) {
          if (junk === '' && !d.required) continue;
          const res = await post(r).field(d.name, junk).attach('image', p.good, 'a.jpg');
          expectError(res, 400, 'BAD_PARAMETER', what(`${d.name}=${JSON.stringify(junk)}`));
        }
      }
      expectError(await post(r, '?no_such_parameter=1').attach('image', p.good, 'a.jpg'), 400, 'BAD_PARAMETER', what('unknown parameter'));
      const first = describeParams(r.params)[0];
      if (first) expectError(await post(r, `?${first.name}=1&${first.name}=2`).attach('image', p.good, 'a.jpg'), 400, 'BAD_PARAMETER', what('repeated parameter'));
      const many = Array.from({ length: 200 }, (_, i) => `p${i}=1`).join('&');
      expectError(await post(r, `?${many}`).attach('image', p.good, 'a.jpg'), 400, 'BAD_PARAMETER', what('200 query fields'));
      await answersNormally(r, 'hostile parameters');
    }
    assert.ok(numericChecked >= 5, `${numericChecked} numeric parameters tried`);
  });

  const URL_CASES: [string, number, string][] = [
    ['file:///etc/passwd', 400, 'INVALID_URL'],
    ['ftp://images.test/cat.jpg', 400, 'INVALID_URL'],
    ['gopher://images.test:70/_GET%20/', 400, 'INVALID_URL'],
    ['data:image/png;base64,iVBORw0KGgo=', 400, 'INVALID_URL'],
    ['javascript:alert(1)', 400, 'INVALID_URL'],
    ['//images.test/cat.jpg', 400, 'INVALID_URL'],
    ['http://user:pass@images.test/cat.jpg', 400, 'INVALID_URL'],
    [`http://images.test/${'a'.repeat(5000)}.jpg`, 400, 'INVALID_URL'],
    // Loopback, private, link-local, metadata, and their disguises: refused before any connection.
    ['http://127.0.0.1/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://127.0.0.1:9000/admin', 403, 'FORBIDDEN_ADDRESS'],
    ['http://2130706433/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://0x7f000001/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://0177.0.0.1/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://127.1/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://0.0.0.0/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[::1]/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[::]/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[::ffff:127.0.0.1]/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[0:0:0:0:0:ffff:7f00:1]/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://localhost/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://10.0.0.1/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://172.16.5.4/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://192.168.0.1/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://100.64.0.1/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://169.254.169.254/latest/meta-data/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://metadata.google.internal/computeMetadata/v1/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://100.100.100.200/latest/meta-data/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[fd00:ec2::254]/latest/meta-data/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[fe80::1]/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[fc00::1]/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[64:ff9b::a00:1]/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://[2002:a00:1::]/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://224.0.0.1/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://255.255.255.255/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://rebind.test/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://v6-private.test/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://internal.test/', 403, 'FORBIDDEN_ADDRESS'],
    ['http://no-such-host.test/', 502, 'URL_FETCH_FAILED'],
  ];

  it('URLs: bad schemes, too long, and every private/loopback/link-local/metadata form, without connecting', async () => {
    for (const r of routes.filter((r) => waysOf(r).includes('url'))) {
      for (const [url, status, code] of URL_CASES) {
        const before = guard.attempts.length;
        expectError(await get(r, url), status, code, `/${r.name} ?url=${url.slice(0, 80)}`);
        assert.equal(guard.attempts.length, before, `/${r.name} ?url=${url.slice(0, 80)}: no connection attempted`);
      }
      await answersNormally(r, 'hostile URLs');
    }
  });

  it('URLs: redirects into private addresses, too many bytes, a server that lies about its length', async () => {
    for (const r of routes.filter((r) => waysOf(r).includes('url'))) {
      const what = (s: string) => `/${r.name}: ${s}`;
      for (const path of ['/redirect/metadata', '/redirect/chain', '/redirect/loopback6']) {
        const before = guard.attempts.length;
        expectError(await get(r, server.url(path)), 403, 'FORBIDDEN_ADDRESS', what(path));
        // Only the hops on the hostile server itself were connected to.
        assert.ok(guard.attempts.slice(before).every((a) => a.startsWith(`${HOSTILE_HOST}:`)), what(`${path} connects`));
      }
      expectError(await get(r, server.url('/redirect/file')), 502, 'URL_FETCH_FAILED', what('redirect to file:'));
      expectError(await get(r, server.url('/oversize')), 413, 'DOWNLOAD_TOO_LARGE', what('Content-Length over the limit'));
      // The first 100 bytes of a JPEG are not an image; the bytes after the declared length are never used.
      const liar = await get(r, server.url('/liar'));
      if (liar.status === 502) expectError(liar, 502, 'URL_FETCH_FAILED', what('more bytes than declared'));
      else expectError(liar, 422, 'UNDECODABLE_IMAGE', what('more bytes than declared'));
      // And a good URL still works.
      expectOk(await get(r, server.url('/payload/good')), r, what('a good URL'));
      await answersNormally(r, 'hostile servers');
    }
  });

  it('URLs: a body that keeps trickling and never ends gets 504 once CVSERVE_URL_TIMEOUT_MS has passed', async () => {
    // Its own app: a tiny download time limit against a body that never completes.
    const slow = await createTestApp(
      { maxBodyBytes: LIMIT, urlMaxBytes: LIMIT, urlTimeoutMs: 100, opencvWorkers: 1, onnxWorkers: 1, onnxThreads: 1 },
      { urlHooks: { lookup: tableLookup({ 'images.test': HOSTILE_HOST }), onConnect: guard.hook, allowAddresses: [HOSTILE_HOST] } },
    );
    try {
      for (const r of slow.resources.filter((r) => waysOf(r).includes('url'))) {
        const res = await request(slow.app).get(`/${r.name}?url=${encodeURIComponent(server.url('/trickle'))}`);
        expectError(res, 504, 'URL_FETCH_TIMEOUT', `/${r.name}: trickling body`);
        assert.match((res.body as { message: string }).message, /longer than 100 ms/);
      }
    } finally {
      await slow.close();
    }
  });

  it('a request line or headers over Node\'s limit get a JSON 431 from the listening server', async () => {
    const { server: listener, port, close } = await listen(svc.handler);
    answerClientErrorsAsJson(listener);
    try {
      const raw = await new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: `/canny?url=${'a'.repeat(64 * 1024)}`, agent: false }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, type: (res.headers['content-type'] ?? '').split(';')[0]!, text }));
        });
        req.on('error', reject);
      });
      expectError({ ...raw, body: JSON.parse(raw.text) as unknown }, 431, 'HEADERS_TOO_LARGE', '64 KiB request line');
      const ok = await request(svc.app).post('/canny').attach('image', p.good, 'a.jpg');
      assert.equal(ok.status, 200);
    } finally {
      await close();
    }
  });

  it('an answer wider than its format can hold gets 413 (not a 500), and PNG still works', async () => {
    const strip = await sharp({ create: { width: 65_535, height: 2, channels: 3, background: '#808080' } }).png().toBuffer();
    const asJpeg = await request(svc.app).post('/canny').set('Content-Type', 'image/png').send(strip);
    expectError(asJpeg, 413, 'OUTPUT_TOO_LARGE', '/canny 65535x2 as JPEG');
    assert.match((asJpeg.body as { message: string }).message, /at most 65500 pixels on a side; the answer is 65535x2: ask for format=png/);
    const asPng = await request(svc.app).post('/canny?format=png').set('Content-Type', 'image/png').send(strip).expect(200);
    const meta = await sharp(asPng.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height], [65_535, 2]);
  });

  it('still answers every route correctly at the end, with the right pixels', async () => {
    for (const r of routes) await answersNormally(r, 'the whole suite');
    const edges = await request(svc.app).post('/canny?format=png').attach('image', p.good, 'a.jpg').expect(200);
    const meta = await sharp(edges.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 72]);
  });
});
