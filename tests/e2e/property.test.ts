import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { ERRORS } from '../../src/errors.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { describeParams } from '../../src/resources/describe.js';
import { createTestApp } from '../helpers/app.js';
import { image } from '../helpers/paths.js';

/**
 * Property: whatever bytes or parameter values a client sends, the service answers with a success
 * or a 4xx JSON error from the registry, never a 500, and keeps serving. Runs are bounded (and the
 * seed printed on failure by fast-check) so the suite stays quick and reproducible.
 */

// A fixed seed keeps CI reproducible; CVSERVE_PROPERTY_SEED=random CVSERVE_PROPERTY_RUNS=2000 for a longer hunt.
const NUM_RUNS = Number(process.env.CVSERVE_PROPERTY_RUNS ?? 100);
const SEED = process.env.CVSERVE_PROPERTY_SEED === 'random' ? undefined : Number(process.env.CVSERVE_PROPERTY_SEED ?? 20_261_123);
const RUN = { numRuns: NUM_RUNS, ...(SEED !== undefined && { seed: SEED }) };

function assertNotAFault(res: request.Response, what: string): void {
  assert.ok(res.status < 500, `${what}: ${res.status} ${res.text?.slice(0, 300)}`);
  if (res.status >= 400) {
    assert.equal(res.type, 'application/json', what);
    assert.ok((res.body as { code?: string }).code! in ERRORS, `${what}: unknown code ${JSON.stringify(res.body)}`);
  }
}

describe('property: no input makes the service fail', () => {
  let svc: CvServe;
  let routes: AnyResource[];
  let jpeg: Buffer;
  let png: Buffer;
  let tiny: Buffer;

  before(async () => {
    svc = await createTestApp({ opencvWorkers: 1, onnxWorkers: 1, onnxThreads: 1, maxBodyBytes: 1 << 20 });
    routes = svc.resources;
    const notReady = routes.filter((r) => !r.status().ready).map((r) => `/${r.name}: ${(r.status() as { reason?: string }).reason}`);
    assert.deepEqual(notReady, [], 'every route is ready, so every route is covered');
    const photo = sharp(image('cat_small.jpg')).resize(48, 64);
    jpeg = await photo.clone().jpeg().toBuffer();
    png = await photo.clone().png().toBuffer();
    tiny = await sharp(image('cat_small.jpg')).resize(24, 32).jpeg().toBuffer();
  });
  after(() => svc.close());

  /** Bytes from plain noise to almost-images: real magic numbers, truncations, flipped bytes. */
  const bytesArb = () =>
    fc.oneof(
      fc.uint8Array({ maxLength: 4096 }),
      fc.tuple(fc.constantFrom([0xff, 0xd8, 0xff], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [0x47, 0x49, 0x46, 0x38, 0x39, 0x61], [0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50]), fc.uint8Array({ maxLength: 2048 }))
        .map(([magic, tail]) => Uint8Array.from([...magic, ...tail])),
      fc.tuple(fc.constantFrom('jpeg', 'png'), fc.nat()).map(([kind, n]) => {
        const src = kind === 'jpeg' ? jpeg : png;
        return Uint8Array.from(src.subarray(0, n % src.length));
      }),
      fc.tuple(fc.constantFrom('jpeg', 'png'), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 })).map(([kind, flips]) => {
        const out = Uint8Array.from(kind === 'jpeg' ? jpeg : png);
        for (const [at, value] of flips) out[at % out.length] = value;
        return out;
      }),
    );

  it('random and mangled bytes, sent every way to every route, never produce a 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.constantFrom('multipart', 'json', 'raw'), bytesArb(), async (pick, way, bytes) => {
        const r = routes[pick % routes.length]!;
        const body = Buffer.from(bytes);
        const req = request(svc.app).post(`/${r.name}`);
        const res =
          way === 'multipart' ? await req.attach('image', body, 'x.jpg') : way === 'json' ? await req.send({ imageBase64: body.toString('base64') }) : await req.set('Content-Type', 'application/octet-stream').send(body);
        assertNotAFault(res, `/${r.name} ${way} ${body.length} bytes`);
      }),
      RUN,
    );
  });

  it('random parameter names and values never produce a 500', async () => {
    const valueArb = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.double().map(String),
      fc.integer().map(String),
      fc.constantFrom('', ' ', 'true', 'false', 'null', 'NaN', '-0', '1e308', '-1e308', '0x1f', '[]', '{}', 'jpeg', 'png', 'webp', 'a,b,c', '%00', '\u0000'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.array(fc.tuple(fc.oneof(fc.constant('known'), fc.string({ minLength: 1, maxLength: 12 })), fc.nat(), valueArb), { maxLength: 5 }),
        fc.constantFrom('query', 'form', 'json'),
        async (pick, pairs, where) => {
          const r = routes[pick % routes.length]!;
          const names = describeParams(r.params).map((d) => d.name);
          const fields: [string, string][] = pairs.map(([name, i, value]) => [name === 'known' && names.length ? names[i % names.length]! : name, value]);
          let res: request.Response;
          if (where === 'query') {
            const query = fields.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
            res = await request(svc.app).post(`/${r.name}?${query}`).attach('image', tiny, 'a.jpg');
          } else if (where === 'form') {
            let req = request(svc.app).post(`/${r.name}`);
            for (const [k, v] of fields) req = req.field(k, v);
            res = await req.attach('image', tiny, 'a.jpg');
          } else {
            res = await request(svc.app).post(`/${r.name}`).send({ ...Object.fromEntries(fields), imageBase64: tiny.toString('base64') });
          }
          assertNotAFault(res, `/${r.name} ${where} ${JSON.stringify(fields)}`);
        },
      ),
      RUN,
    );
  });

  it('is still serving afterwards', async () => {
    for (const r of routes) {
      const res = await request(svc.app).post(`/${r.name}`).attach('image', jpeg, 'cat.jpg');
      assert.equal(res.status, 200, `/${r.name}: ${res.text?.slice(0, 200)}`);
    }
  });
});
