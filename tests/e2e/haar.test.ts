import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import type { Box } from '../../src/engines/opencv/protocol.js';
import { TASK_CHANNEL, type TaskEvent } from '../../src/engines/pool.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { servePhotos } from '../helpers/photo-server.js';
import { assertSameBoxes, CAT_CASCADE, FACE_CASCADE, imageBytes, matchBoxes, modelsDir, reference } from '../resources/haar-reference.js';

const PHOTOS = Object.keys(reference.images);

type Way = 'GET ?url=' | 'multipart image' | 'raw image/jpeg body' | 'JSON imageBase64';

describe('/detect and /catfacedetection over HTTP', () => {
  let svc: CvServe;
  let photos: Awaited<ReturnType<typeof servePhotos>>;
  let base: string;

  before(async () => {
    svc = await createTestApp({ allowPrivateNetworks: true });
    // A local image server for the ?url= way (private networks are allowed in this app only).
    photos = await servePhotos(PHOTOS);
    base = photos.base;
  });
  after(async () => {
    await svc.close();
    await photos.close();
  });

  function send(route: string, way: Way, name: string, query = ''): request.Test {
    const bytes = imageBytes(name);
    const q = query ? `?${query}` : '';
    switch (way) {
      case 'GET ?url=':
        return request(svc.app).get(`/${route}?${query ? `${query}&` : ''}url=${encodeURIComponent(`${base}/${name}`)}`);
      case 'multipart image':
        return request(svc.app).post(`/${route}${q}`).attach('image', bytes, name);
      case 'raw image/jpeg body':
        return request(svc.app).post(`/${route}${q}`).set('Content-Type', 'image/jpeg').send(bytes);
      case 'JSON imageBase64':
        return request(svc.app).post(`/${route}${q}`).send({ imageBase64: bytes.toString('base64') });
    }
  }

  function boxesOf(res: request.Response): Box[] {
    assert.equal(res.status, 200, brief(res));
    assert.equal(res.type, 'application/json');
    assert.equal(res.body.status, 'ok');
    assert.ok(Array.isArray(res.body.result));
    for (const entry of res.body.result) assert.deepEqual(Object.keys(entry), ['box']);
    return res.body.result.map((r: { box: Box }) => r.box);
  }

  const parity: [route: string, name: string, expected: Box[], ways: Way[]][] = [
    ['detect', 'test_face_processing.jpg', reference.images['test_face_processing.jpg'].faces, ['GET ?url=', 'multipart image', 'raw image/jpeg body', 'JSON imageBase64']],
    ['catfacedetection', 'cat_small.jpg', reference.images['cat_small.jpg'].catfaces, ['multipart image', 'raw image/jpeg body']],
    ['detect', 'car.jpg', reference.images['car.jpg'].faces, ['multipart image']],
    ['catfacedetection', 'car.jpg', reference.images['car.jpg'].catfaces, ['raw image/jpeg body']],
    ['detect', 'cat_small.jpg', reference.images['cat_small.jpg'].faces, ['JSON imageBase64']],
    ['catfacedetection', 'test_face_processing.jpg', reference.images['test_face_processing.jpg'].catfaces, ['GET ?url=']],
  ];
  for (const [route, name, expected, ways] of parity) {
    for (const way of ways) {
      it(`/${route} on ${name} by ${way}: the ${expected.length} boxes native OpenCV finds`, async () => {
        assertSameBoxes(boxesOf(await send(route, way, name)), expected, 0.9);
      });
    }
  }

  it('maxSide: boxes from a smaller copy, in original coordinates, overlapping the full-resolution boxes', async () => {
    const cat = boxesOf(await send('catfacedetection', 'multipart image', 'cat_small.jpg', 'maxSide=500'));
    assert.equal(cat.length, 1);
    const v = matchBoxes(cat, reference.images['cat_small.jpg'].catfaces)[0];
    assert.ok(v >= 0.5, `cat face ${JSON.stringify(cat[0])} has IoU ${v.toFixed(2)} with the full-resolution box`);

    const faces = boxesOf(await send('detect', 'raw image/jpeg body', 'test_face_processing.jpg', 'maxSide=400'));
    assert.equal(faces.length, 16);
    matchBoxes(reference.images['test_face_processing.jpg'].faces, faces).forEach((iou, i) =>
      assert.ok(iou >= 0.5, `box ${JSON.stringify(faces[i])} overlaps no full-resolution face`),
    );
  });

  describe('drawing', () => {
    const faces = reference.images['test_face_processing.jpg'].faces;

    it('draw=true answers the input as an image with the boxes drawn: changed on the box borders, nowhere far outside', async () => {
      const res = await send('detect', 'multipart image', 'test_face_processing.jpg', 'draw=true&format=png');
      assert.equal(res.status, 200);
      assert.equal(res.type, 'image/png');
      const drawn = await sharp(res.body as Buffer).raw().toBuffer({ resolveWithObject: true });
      const original = await sharp(imageBytes('test_face_processing.jpg')).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([drawn.info.width, drawn.info.height], [640, 482]);
      assert.equal(drawn.info.channels, 3);

      const within = (x: number, y: number, margin: number) =>
        faces.some(([x1, y1, x2, y2]) => x >= x1 - margin && x < x2 + margin && y >= y1 - margin && y < y2 + margin);
      let changedInside = 0;
      let changedFarOutside = 0;
      for (let y = 0; y < 482; y++) {
        for (let x = 0; x < 640; x++) {
          const i = (y * 640 + x) * 3;
          const changed = drawn.data[i] !== original.data[i] || drawn.data[i + 1] !== original.data[i + 1] || drawn.data[i + 2] !== original.data[i + 2];
          if (!changed) continue;
          if (within(x, y, 0)) changedInside++;
          else if (!within(x, y, 2)) changedFarOutside++;
        }
      }
      assert.equal(changedFarOutside, 0);
      // Every box has a border of at least 2 px on 4 sides: 17 boxes of 34..46 px give well over 17 × 4 × 2 × 30 pixels.
      assert.ok(changedInside > 17 * 4 * 2 * 30, `only ${changedInside} pixels changed inside the boxes`);
    });

    it('draw=true answers the input format by default; format and Accept choose others', async () => {
      const jpeg = await send('catfacedetection', 'raw image/jpeg body', 'cat_small.jpg', 'draw=true&maxSide=500');
      assert.equal(jpeg.status, 200);
      assert.equal(jpeg.type, 'image/jpeg');
      const meta = await sharp(jpeg.body as Buffer).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 1000, 1334]);

      const webp = await send('detect', 'JSON imageBase64', 'test_face_processing.jpg', 'draw=1&format=webp');
      assert.equal(webp.type, 'image/webp');
      assert.equal((await sharp(webp.body as Buffer).metadata()).width, 640);

      const accepted = await send('detect', 'multipart image', 'test_face_processing.jpg').set('Accept', 'image/png');
      assert.equal(accepted.status, 200);
      assert.equal(accepted.type, 'image/png');
      assert.equal((await sharp(accepted.body as Buffer).metadata()).height, 482);
    });
  });

  describe('parameter validation', () => {
    const cases: [string, Way, string, string, Record<string, unknown>?][] = [
      ['detect', 'multipart image', 'scaleFactor=3', 'scaleFactor'],
      ['detect', 'raw image/jpeg body', 'scaleFactor=1', 'scaleFactor'],
      ['catfacedetection', 'multipart image', 'minNeighbors=-1', 'minNeighbors'],
      ['catfacedetection', 'raw image/jpeg body', 'minNeighbors=51', 'minNeighbors'],
      ['detect', 'GET ?url=', 'minSize=0', 'minSize'],
      ['detect', 'multipart image', 'maxSide=31', 'maxSide'],
      ['catfacedetection', 'multipart image', 'format=gif&draw=true', 'format'],
      ['detect', 'multipart image', 'draw=perhaps', 'draw'],
    ];
    for (const [route, way, query, name] of cases) {
      it(`/${route}?${query} → 400 naming ${name}`, async () => {
        const res = await send(route, way, 'test_face_processing.jpg', query);
        assert.equal(res.status, 400);
        assert.equal(res.body.code, 'BAD_PARAMETER');
        assert.ok(res.body.message.includes(name), res.body.message);
      });
    }

    it('JSON fields are validated too', async () => {
      const res = await request(svc.app)
        .post('/catfacedetection')
        .send({ imageBase64: imageBytes('cat_small.jpg').toString('base64'), maxSide: 20001 });
      assert.equal(res.status, 400);
      assert.ok(res.body.message.includes('maxSide'), res.body.message);
    });
  });

  it('runs four large detections on the OpenCV workers (never on the event loop), each with the right answer', async () => {
    const events: TaskEvent[] = [];
    const onTask = (m: unknown) => events.push(m as TaskEvent);
    diagnostics.subscribe(TASK_CHANNEL, onTask);
    let answers: request.Response[];
    try {
      answers = await Promise.all(Array.from({ length: 4 }, () => send('detect', 'raw image/jpeg body', 'car.jpg').then((res) => res)));
    } finally {
      diagnostics.unsubscribe(TASK_CHANNEL, onTask);
    }
    for (const res of answers) assertSameBoxes(boxesOf(res), reference.images['car.jpg'].faces, 0.9);
    // Each detection is one task on a worker, or several when split by scale across idle workers.
    const own = events.filter((e) => e.poolId === svc.engines.opencv.stats().id);
    assert.ok(own.length >= 4, `${own.length} worker tasks for 4 detections`);
    assert.deepEqual([...new Set(own.map((e) => `${e.pool} ${e.op} ${e.ok}`))], ['opencv detect true']);
  });
});

describe('a missing cascade', () => {
  let svc: CvServe;
  let dir: string;

  before(async () => {
    // Only the cat cascade is there: /detect must be unavailable, everything else must work.
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-haar-models-'));
    await symlink(path.join(modelsDir, CAT_CASCADE), path.join(dir, CAT_CASCADE));
    svc = await createTestApp({ modelsDir: dir, opencvWorkers: 1 });
  });
  after(async () => {
    await svc.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 on that route only, naming the file and where it was looked for', async () => {
    const res = await request(svc.app).post('/detect').attach('image', imageBytes('test_face_processing.jpg'), 'face.jpg');
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'MODEL_UNAVAILABLE');
    assert.ok(res.body.message.includes(FACE_CASCADE), res.body.message);
    assert.ok(res.body.message.includes(dir), res.body.message);

    const cats = await request(svc.app).post('/catfacedetection?maxSide=500').attach('image', imageBytes('cat_small.jpg'), 'cat.jpg');
    assert.equal(cats.status, 200);
    assert.equal(cats.body.result.length, 1);
    assert.equal((await request(svc.app).get('/ping')).status, 200);
    const edges = await request(svc.app).post('/canny').attach('image', imageBytes('test_face_processing.jpg'), 'face.jpg');
    assert.equal(edges.status, 200);
  });
});
