import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { image } from '../helpers/paths.js';
import { sizeResource } from '../helpers/resources.js';

function expectError(res: request.Response, status: number, message: RegExp): void {
  assert.equal(res.status, status, brief(res));
  assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)));
  assert.deepEqual([res.body.success, res.body.code], [false, status]);
  assert.match(res.body.error, message);
}

describe('DeepStack face routes: gallery operations, and what a service without the face resources answers', () => {
  let svc: CvServe;
  let dir: string;
  let faceA: Buffer;
  let faceB: Buffer;
  let blank: Buffer;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-ds-faces-'));
    // No facedetection / facerecognition resources (and no detector): their routes are not available.
    svc = await createTestApp({ dataDir: dir, opencvWorkers: 1 }, { resources: [sizeResource()] });
    const group = await readFile(image('test_face_processing.jpg'));
    faceA = await sharp(group).extract({ left: 250, top: 150, width: 150, height: 150 }).jpeg({ quality: 95 }).toBuffer();
    faceB = await sharp(faceA).flop().jpeg({ quality: 90 }).toBuffer();
    blank = await sharp({ create: { width: 120, height: 90, channels: 3, background: '#9ab' } }).jpeg().toBuffer();
  });
  after(async () => {
    await svc.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('routes whose resource the service lacks answer 501 "not available in this version" in the dialect, never a 404 page', async () => {
    for (const route of ['/v1/vision/face', '/v1/vision/face/recognize', '/v1/vision/detection', '/v1/vision/scene', '/v1/image/superresolution']) {
      const res = await request(svc.app).post(route).attach('image', blank, 'image.jpg');
      expectError(res, 501, /is not available in this version/);
    }
    const list = await request(svc.app).post('/v1/vision/custom/list');
    assert.deepEqual(list.body.models, ['yolox-nano'], 'the manifest\'s detectors are still custom models');
  });

  it('match: exactly two files, under any names (DeepStack\'s messages otherwise)', async () => {
    const same = await request(svc.app).post('/v1/vision/face/match').attach('first', faceA, 'a.jpg').attach('second', faceB, 'b.jpg');
    assert.equal(same.status, 200, brief(same));
    assert.equal(same.body.success, true);
    assert.ok(same.body.similarity >= 0.67 && same.body.similarity <= 1, String(same.body.similarity));
    expectError(await request(svc.app).post('/v1/vision/face/match'), 400, /^No valid image file found/);
    expectError(await request(svc.app).post('/v1/vision/face/match').attach('image1', faceA, 'a.jpg'), 400, /^expected two image files, only one found$/);
    const three = request(svc.app).post('/v1/vision/face/match').attach('a', faceA, 'a.jpg').attach('b', faceA, 'b.jpg').attach('c', faceA, 'c.jpg');
    expectError(await three, 400, /^only two images allowed$/);
    expectError(await request(svc.app).post('/v1/vision/face/match').attach('a', faceA, 'a.jpg').attach('b', blank, 'b.jpg'), 400, /^No face found in image/);
  });

  it('register (any field names, per-file outcome), list, delete: userid required, an unknown userid deletes nothing and succeeds', async () => {
    expectError(await request(svc.app).post('/v1/vision/face/register').attach('image', faceA, 'a.jpg'), 400, /^userid not specified$/);
    expectError(await request(svc.app).post('/v1/vision/face/register').field('userid', 'carol'), 400, /^No valid image file found/);
    const reg = await request(svc.app).post('/v1/vision/face/register').field('userid', 'carol').attach('photo', faceA, 'a.jpg').attach('other', blank, 'b.jpg');
    assert.equal(reg.status, 200, brief(reg));
    assert.deepEqual(
      { success: reg.body.success, message: reg.body.message, added: reg.body.added, images: reg.body.images.map((i: { field: string; status: string }) => [i.field, i.status]) },
      { success: true, message: 'face added', added: 1, images: [['photo', 'added'], ['other', 'no face']] },
    );
    const list = await request(svc.app).post('/v1/vision/face/list').type('form').send({ api_key: '' });
    assert.deepEqual(list.body, { success: true, faces: ['carol'], users: [{ userid: 'carol', photos: 1 }] });
    const deleted = await request(svc.app).post('/v1/vision/face/delete').type('form').send({ userid: 'carol' });
    assert.deepEqual(deleted.body, { success: true, deleted: 1 });
    const unknown = await request(svc.app).post('/v1/vision/face/delete').field('userId', 'carol');
    assert.deepEqual(unknown.body, { success: true, deleted: 0 });
    expectError(await request(svc.app).post('/v1/vision/face/delete'), 400, /^userid not specified$/);
    assert.deepEqual((await request(svc.app).get('/v1/vision/face/list')).body.faces, []);
  });
});

describe('DeepStack face routes with the gallery database down', () => {
  let svc: CvServe;

  before(async () => {
    // Nothing listens on port 1 of loopback: the gallery cannot open.
    svc = await createTestApp({ databaseUrl: 'postgres://cvserve:x@127.0.0.1:1/cvserve', opencvWorkers: 1 }, { resources: [sizeResource()] }, { waitForWorkers: false });
  });
  after(() => svc.close());

  it('list and delete answer 503 in the dialect, the service itself stays up', async () => {
    expectError(await request(svc.app).post('/v1/vision/face/list'), 503, /face gallery/i);
    expectError(await request(svc.app).post('/v1/vision/face/delete').field('userid', 'x'), 503, /face gallery/i);
    assert.equal((await request(svc.app).get('/v1/status/ping')).status, 200);
  });
});
