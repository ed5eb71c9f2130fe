/**
 * Faces you can trust (issue 21), through the app: userids are names people can read (the rules,
 * each refusal saying why; NFC and NFD one user; `unknown` reserved), a stored name that XML cannot
 * hold still draws; register describes only the face it stores; min_confidence=1 is an answer,
 * not a 500.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import type { FaceBox } from '../../src/engines/face/engine.js';
import { galleryFile } from '../../src/faces/open.js';
import { brief } from '../helpers/http.js';
import { cropAround, faceTestConfig, PHOTO, SharedEngines, sqliteStore, type Store } from './harness.js';

const engines = new SharedEngines();
let crops: Buffer[];
let store: Store;
let svc: CvServe;
/** How many faces each `describe` task of the face engine described (register, match, recognize). */
const described: number[] = [];

before(async () => {
  const { data, info } = await sharp(PHOTO).raw().toBuffer({ resolveWithObject: true });
  const boxes: FaceBox[] = (await engines.base.face.detect({ data, width: info.width, height: info.height, channels: 3 })).map((f) => f.box);
  crops = await Promise.all(boxes.slice(0, 3).map((b) => cropAround(b)));
  const face = engines.base.face;
  const run = face.run.bind(face);
  face.run = (async (...args: Parameters<typeof run>) => {
    const result = await run(...args);
    if (args[0] === 'describe') described.push(result.faces.length);
    return result;
  }) as typeof face.run;
  store = sqliteStore();
  svc = await engines.app(faceTestConfig(store.settings));
});

after(async () => {
  await svc.close();
  await store.destroy();
  await engines.close();
});

const register = (userid: string, photo: Buffer) => request(svc.app).post('/v1/vision/face/register').field('userid', userid).attach('image', photo, 'p.jpg');

describe('userid rules', () => {
  const refused: [string, string, RegExp][] = [
    ['unknown', 'reserved: what answers call a stranger', /"unknown" is reserved/],
    ['Unknown', 'reserved in any case', /"unknown" is reserved/],
    ['ali\u202Ece', 'a bidi override', /bidirectional override or mark \(U\+202E\)/],
    ['\u200B\u200B', 'only zero-width characters', /invisible format character \(U\+200B\)/],
    ['bob\uFFFF', 'a noncharacter (breaks the SVG renderer)', /noncharacter \(U\+FFFF\)/],
    ['bob\u2028smith', 'a line separator', /line or paragraph separator \(U\+2028\)/],
    ['bob\u0007', 'a control character', /control character \(U\+0007\)/],
    ['   ', 'only spaces', /userid (is required|not specified)/],
    ['x'.repeat(257), 'over 256 characters', /longer than 256 characters/],
  ];
  for (const [userid, why, message] of refused) {
    it(`refuses ${why} with a 400 that says so`, async () => {
      const res = await register(userid, crops[0]!);
      assert.equal(res.status, 400, brief(res));
      assert.match(res.body.error, message);
    });
  }

  it('stores names NFC and trimmed: NFC and NFD spellings are one user, 256 characters are fine', async () => {
    assert.equal((await register('  Ame\u0301lie ', crops[0]!)).body.userid, 'Amélie');
    const nfc = await register('Am\u00e9lie', crops[1]!);
    assert.deepEqual([nfc.status, nfc.body.userid, nfc.body.added], [200, 'Amélie', 1], brief(nfc));
    assert.equal((await register('é'.repeat(256), crops[2]!)).status, 200);
    const list = await request(svc.app).post('/v1/vision/face/list');
    assert.deepEqual(list.body.users, [
      { userid: 'Amélie', photos: 2 },
      { userid: 'é'.repeat(256), photos: 1 },
    ]);
    const deleted = await request(svc.app).post('/v1/vision/face/delete').field('userid', 'Ame\u0301lie');
    assert.equal(deleted.body.deleted, 2, 'delete by the NFD spelling');
    await request(svc.app).post('/v1/vision/face/delete').field('userid', 'é'.repeat(256));
  });

  it('a name stored before the rules that XML cannot hold (U+FFFF) still draws (200, not 500) and can still be deleted', async () => {
    assert.equal((await register('legacy', crops[0]!)).status, 200);
    const db = new Database(galleryFile(store.settings.dataDir));
    try {
      db.prepare('UPDATE face_descriptors SET userid = ? WHERE userid = ?').run('leg\uFFFFacy', 'legacy');
      db.prepare('UPDATE face_meta SET generation = generation + 1').run();
    } finally {
      db.close();
    }
    const drawn = await request(svc.app).post('/facerecognition?draw=true&format=png').set('Content-Type', 'image/jpeg').send(crops[0]!);
    assert.equal(drawn.status, 200, brief(drawn));
    assert.equal(drawn.type, 'image/png');
    const json = await request(svc.app).post('/facerecognition').set('Content-Type', 'image/jpeg').send(crops[0]!);
    assert.equal(json.body.result[0].userid, 'leg\uFFFFacy', 'recognized as the stored name');
    const deleted = await request(svc.app).post('/v1/vision/face/delete').field('userid', 'leg\uFFFFacy');
    assert.deepEqual([deleted.status, deleted.body.deleted], [200, 1], brief(deleted));
  });
});

describe('register describes only the face it stores', () => {
  it('a photo of 17 people: every face detected, one described', async () => {
    described.length = 0;
    const res = await register('crowd', PHOTO);
    assert.equal(res.status, 200, brief(res));
    assert.equal(res.body.images[0].message, '17 faces found; the largest was registered');
    assert.deepEqual(described, [1], 'one description for the one face stored (before: 17)');
    described.length = 0;
    const match = await request(svc.app).post('/v1/vision/face/match').attach('image1', PHOTO, 'a.jpg').attach('image2', crops[0]!, 'b.jpg');
    assert.equal(match.status, 200, brief(match));
    assert.deepEqual(described, [1, 1], 'match compares the largest faces: one description each');
    await request(svc.app).post('/v1/vision/face/delete').field('userid', 'crowd');
  });
});

describe('min_confidence=1 (inside the documented 0-1)', () => {
  it('answers 200 on /v1/vision/face, /facedetection and /v1/vision/face/recognize', async () => {
    const face = await request(svc.app).post('/v1/vision/face').field('min_confidence', '1').attach('image', PHOTO, 'p.jpg');
    assert.equal(face.status, 200, brief(face));
    const native = await request(svc.app).post('/facedetection?minConfidence=1').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.equal(native.status, 200, brief(native));
    assert.equal(native.body.result.length, face.body.predictions.length);
    const zero = await request(svc.app).post('/facedetection?minConfidence=0').set('Content-Type', 'image/jpeg').send(PHOTO);
    assert.equal(zero.status, 200, brief(zero));
    const recognize = await request(svc.app).post('/v1/vision/face/recognize').field('min_confidence', '1').attach('image', PHOTO, 'p.jpg');
    assert.equal(recognize.status, 200, brief(recognize));
  });
});
