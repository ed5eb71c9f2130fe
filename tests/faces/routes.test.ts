/**
 * The face routes' edges: /facedetection's answer, parameters and cost bound; the limits (images
 * per register call, users, photos per user, faces per frame); a gallery database that is down
 * (503 on the face routes only, the rest of the service ready), and its recovery; two services on
 * one PostgreSQL sharing a gallery; API keys.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import type { FaceBox } from '../../src/engines/face/engine.js';
import { AppError } from '../../src/errors.js';
import type { FaceGallery } from '../../src/faces/gallery.js';
import { openGallery } from '../../src/faces/open.js';
import { FaceGalleryService, faceServiceOptions } from '../../src/faces/service.js';
import { image } from '../helpers/paths.js';
import { outlineChange } from '../helpers/drawn.js';
import { boxIoU } from '../helpers/images.js';
import { cropAround, faceTestConfig, NEVER, PHOTO, postgresStore, SharedEngines, sqliteStore, stopTestServer, transformedPhoto, type Store } from './harness.js';

const CAR = readFileSync(image('car.jpg'));

function isAppError(code: string, message?: RegExp) {
  return (err: unknown) => err instanceof AppError && err.code === code && (!message || message.test(err.publicMessage));
}

const engines = new SharedEngines();
let boxes: FaceBox[];
let crops: Buffer[];
const stores: Store[] = [];
const apps: CvServe[] = [];

async function app(overrides: Parameters<typeof faceTestConfig>[0] = {}): Promise<CvServe> {
  const store = sqliteStore();
  stores.push(store);
  const svc = await engines.app(faceTestConfig({ ...store.settings, ...overrides }));
  apps.push(svc);
  return svc;
}

before(async () => {
  const { data, info } = await sharp(PHOTO).raw().toBuffer({ resolveWithObject: true });
  boxes = (await engines.base.face.detect({ data, width: info.width, height: info.height, channels: 3 })).map((f) => f.box);
  crops = await Promise.all(boxes.slice(0, 4).map((b) => cropAround(b)));
});

after(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(stores.map((s) => s.destroy()));
  await engines.close();
  await stopTestServer();
});

describe('/facedetection', () => {
  let svc: CvServe;
  before(async () => {
    svc = await app();
  });

  it('finds the 17 faces with the SSD detector\'s real scores, largest first, as the engine does', async () => {
    const res = await request(svc.app).post('/facedetection').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.equal(res.status, 200);
    const result = res.body.result as { box: FaceBox; score: number }[];
    assert.equal(result.length, 17);
    assert.deepEqual(result.map((r) => r.box), boxes);
    assert.ok(result.every((r) => r.score >= 0.7 && r.score <= 1 && Math.round(r.score * 1000) === r.score * 1000), 'real scores, 3 decimals');
    assert.ok(new Set(result.map((r) => r.score)).size > 10, 'scores differ per face');
  });

  it('finds the faces of a photo larger than CVSERVE_FACE_MAX_SIDE, in its own pixels (shrunk while decoding)', async () => {
    const big = await sharp(PHOTO).resize(640 * 4).jpeg().toBuffer(); // 2560 px > 1920
    const res = await request(svc.app).post('/facedetection').set('Content-Type', 'image/jpeg').send(big);
    const result = res.body.result as { box: FaceBox }[];
    assert.equal(result.length, 17);
    for (const b of boxes) {
      const scaled = b.map((v) => v * 4);
      assert.ok(Math.max(...result.map((r) => boxIoU(r.box, scaled))) > 0.6, `face at ${b.join(',')} found at 4x`);
    }
  });

  it('minConfidence filters, is checked, and faceless photos answer an empty list', async () => {
    const strict = await request(svc.app).post('/facedetection?minConfidence=0.99').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.ok(strict.body.result.length > 0 && strict.body.result.length < 17, `${strict.body.result.length} faces at 0.99`);
    assert.ok(strict.body.result.every((r: { score: number }) => r.score >= 0.99));
    const bad = await request(svc.app).post('/facedetection?minConfidence=1.5').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /minConfidence/);
    const car = await request(svc.app).post('/facedetection').set('Content-Type', 'image/jpeg').send(CAR);
    assert.deepEqual(car.body, { status: 'ok', result: [] });
  });

  it('draws the boxes with draw=true', async () => {
    const res = await request(svc.app).post('/facedetection?draw=true').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'image/jpeg');
    const meta = await sharp(res.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height], [640, 482]);
    // Along each of the 17 boxes the answer, the pixels are the stroke's, not the photo's.
    const found = (await request(svc.app).post('/facedetection').set('Content-Type', 'image/jpeg').send(PHOTO)).body.result as { box: FaceBox }[];
    assert.equal(found.length, 17);
    const change = await outlineChange(PHOTO, res.body as Buffer, found.map((f) => f.box));
    assert.ok(change.every((c) => c >= 0.8), `outline pixels changed per box: ${change.map((c) => c.toFixed(2)).join(' ')}`);
  });

  it('is bounded by CVSERVE_MAX_WORK_PIXELS before decoding, naming the copy faces are searched in', async () => {
    const small = await app({ maxWorkPixels: 100_000 });
    for (const route of ['/facedetection', '/facerecognition']) {
      const res = await request(small.app).post(route).set('Content-Type', 'image/jpeg').send(PHOTO);
      assert.equal(res.status, 413);
      assert.match(res.body.message, /the 640x482 copy faces are searched in needs 308,480 pixels/);
    }
  });
});

describe('face limits', () => {
  it('images per register call (CVSERVE_FACE_MAX_IMAGES), an empty or bad userid, no image: 400 before any work', async () => {
    const svc = await app({ faceMaxImages: 2 });
    const three = [0, 1, 2].map((i) => ({ field: `image${i}`, bytes: crops[0]! }));
    await assert.rejects(svc.faces.register('a', three, NEVER), isAppError('BAD_PARAMETER', /At most 2 images per register call \(got 3\)/));
    await assert.rejects(svc.faces.register('', [{ field: 'image', bytes: crops[0]! }], NEVER), isAppError('BAD_PARAMETER', /userid is required/));
    await assert.rejects(svc.faces.register('a\nb', [{ field: 'image', bytes: crops[0]! }], NEVER), isAppError('BAD_PARAMETER', /control character \(U\+000A\)/));
    await assert.rejects(svc.faces.register('a', [], NEVER), isAppError('MISSING_IMAGE'));
    await assert.rejects(svc.faces.delete(''), isAppError('BAD_PARAMETER'));
    assert.deepEqual(await svc.faces.list(), []);
  });

  it('users in the gallery (CVSERVE_FACE_MAX_USERS) and photos per user: 409 GALLERY_FULL, nothing stored', async () => {
    const svc = await app({ faceMaxUsers: 2, faceMaxPhotosPerUser: 2 });
    await svc.faces.register('a', [{ field: 'image', bytes: crops[0]! }], NEVER);
    await svc.faces.register('b', [{ field: 'image', bytes: crops[1]! }], NEVER);
    await assert.rejects(svc.faces.register('c', [{ field: 'image', bytes: crops[2]! }], NEVER), isAppError('GALLERY_FULL', /most users allowed \(2\)/));
    await assert.rejects(
      svc.faces.register('a', [{ field: 'image', bytes: crops[2]! }, { field: 'image1', bytes: crops[3]! }], NEVER),
      isAppError('GALLERY_FULL', /more than 2 face photos/),
    );
    assert.deepEqual(await svc.faces.list(), [{ userid: 'a', photos: 1 }, { userid: 'b', photos: 1 }]);
    const status = (await request(svc.app).post('/facerecognition').set('Content-Type', 'image/jpeg').send(PHOTO)).status;
    assert.equal(status, 200, 'a full gallery still recognizes');
  });

  it('faces per frame (CVSERVE_FACE_MAX_FACES): the most confident are kept', async () => {
    const svc = await app({ faceMaxFaces: 5 });
    const res = await request(svc.app).post('/facerecognition').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.equal(res.body.result.length, 5);
    const det = await request(svc.app).post('/facedetection').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.equal(det.body.result.length, 5);
  });

  it('a register whose caller went away stores nothing', async () => {
    const svc = await app();
    const gone = new AbortController();
    gone.abort(new Error('client went away'));
    await assert.rejects(svc.faces.register('a', [{ field: 'image', bytes: crops[0]! }], gone.signal), /client went away/);
    assert.deepEqual(await svc.faces.list(), []);
  });

  it('with API keys set, the face routes need one like every route', async () => {
    const svc = await app({ apiKeys: ['k-123'] });
    assert.equal((await request(svc.app).post('/facerecognition').set('Content-Type', 'image/jpeg').send(PHOTO)).status, 401);
    const ok = await request(svc.app).post('/facerecognition').set('Content-Type', 'image/jpeg').set('Authorization', 'Bearer k-123').send(PHOTO);
    assert.equal(ok.status, 200);
  });
});

describe('a gallery database that is down', () => {
  it('makes the face routes answer 503 GALLERY_UNAVAILABLE, and only them: /readyz, /facedetection and /canny still answer', async () => {
    const closed = await closedPort();
    const svc = await app({ databaseUrl: `postgres://postgres@127.0.0.1:${closed}/nothing` });
    assert.deepEqual(svc.faces.status(), { ready: true }, 'not opened yet: nothing known to be wrong');
    const res = await request(svc.app).post('/facerecognition').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'GALLERY_UNAVAILABLE');
    assert.ok(!JSON.stringify(res.body).includes(String(closed)), 'the database address is not told to clients');
    await assert.rejects(svc.faces.register('a', [{ field: 'image', bytes: crops[0]! }], NEVER), isAppError('GALLERY_UNAVAILABLE'));
    await assert.rejects(svc.faces.list(), isAppError('GALLERY_UNAVAILABLE'));
    assert.deepEqual(svc.faces.status(), { ready: false, reason: 'face gallery unavailable' });
    assert.equal((await request(svc.app).get('/readyz')).status, 200);
    assert.equal((await request(svc.app).post('/facedetection').set('Content-Type', 'image/jpeg').send(PHOTO)).body.result.length, 17);
    assert.equal((await request(svc.app).post('/canny').set('Content-Type', 'image/jpeg').send(PHOTO)).status, 200);
    assert.match((await request(svc.app).get('/metrics')).text, /^# TYPE cvserve_face_gallery_size gauge$/m, 'a scrape does not fail on it');
  });

  it('fails fast after a failed open and tries again once the fast-fail window has passed', async () => {
    let now = 0;
    let attempts = 0;
    let real: FaceGallery | undefined;
    const store = sqliteStore();
    stores.push(store);
    const config = faceTestConfig(store.settings);
    const faces = new FaceGalleryService({
      ...faceServiceOptions(config, engines.base.face),
      retryMs: 1000,
      now: () => now,
      openGallery: async () => {
        attempts++;
        if (attempts === 1) throw new Error('connect ECONNREFUSED');
        real = await openGallery({ ...config, limits: { maxUsers: 10, maxDescriptorsPerUser: 10 } });
        return real;
      },
    });
    await assert.rejects(faces.list(), isAppError('GALLERY_UNAVAILABLE'));
    now = 249;
    await assert.rejects(faces.list(), isAppError('GALLERY_UNAVAILABLE'));
    assert.equal(attempts, 1, 'no new attempt within the first fast-fail window (a quarter of retryMs)');
    assert.equal(faces.status().ready, false);
    now = 250;
    assert.equal(faces.status().ready, true, 'after the window the gallery is tried again (status starts it in the background)');
    await until(() => attempts === 2);
    assert.equal(attempts, 2);
    assert.deepEqual(await faces.list(), []);
    await faces.close();
  });
});

describe('two services on one PostgreSQL', () => {
  it('share a gallery: registered through one, recognized (and deleted) through the other', async () => {
    const store = await postgresStore();
    stores.push(store);
    const one = await engines.app(faceTestConfig(store.settings));
    const two = await engines.app(faceTestConfig(store.settings));
    apps.push(one, two);
    const transformed = await transformedPhoto(1.5);
    // The second recognizes first, so its snapshot is loaded before the register and must notice it.
    const before = (await request(two.app).post('/facerecognition').set('Content-Type', 'image/jpeg').send(transformed)).body.result as { userid: string }[];
    assert.equal(before.length, 17);
    assert.ok(before.every((f) => f.userid === 'unknown'));
    await one.faces.register('shared-user', [{ field: 'image', bytes: crops[0]! }], NEVER);
    const seen = (await request(two.app).post('/facerecognition').set('Content-Type', 'image/jpeg').send(transformed)).body.result as { userid: string }[];
    assert.equal(seen.filter((f) => f.userid === 'shared-user').length, 1);
    assert.deepEqual(await two.faces.list(), [{ userid: 'shared-user', photos: 1 }]);
    assert.deepEqual(await two.faces.delete('shared-user'), { deleted: 1 });
    const after = (await request(one.app).post('/facerecognition').set('Content-Type', 'image/jpeg').send(transformed)).body.result as { userid: string }[];
    assert.equal(after.length, 17);
    assert.ok(after.every((f) => f.userid === 'unknown'), 'deleted through the other, gone here too');
  });
});

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(probe: () => boolean): Promise<void> {
  for (let i = 0; i < 60_000 && !probe(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(probe(), 'condition reached');
}
