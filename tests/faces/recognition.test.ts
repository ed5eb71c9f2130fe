/**
 * Face recognition end to end on real photos, on SQLite and on PostgreSQL: register through the
 * face service (what the DeepStack routes call), recognize through the native /facerecognition
 * route (the pipeline the DeepStack recognize route goes through), with photos made from
 * test_face_processing.jpg (crops, a flipped and rescaled copy) and faceless ones.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import type { FaceBox } from '../../src/engines/face/engine.js';
import { AppError } from '../../src/errors.js';
import { galleryFile } from '../../src/faces/open.js';
import { image } from '../helpers/paths.js';
import { outlineChange } from '../helpers/drawn.js';
import {
  capturingLog,
  cropAround,
  faceTestConfig,
  H,
  NEVER,
  nearest,
  PHOTO,
  postgresStore,
  SharedEngines,
  sqliteStore,
  stopTestServer,
  transformedPhoto,
  untransform,
  W,
  type Store,
} from './harness.js';

const SCALE = 1.5;
const CAR = readFileSync(image('car.jpg'));
const CAT = readFileSync(image('cat_small.jpg'));
const ASTRONAUT = readFileSync(new URL('../../data/astronaut.jpg', import.meta.url));

interface Recognized {
  box: [number, number, number, number];
  userid: string;
  confidence: number;
}

function isAppError(code: string) {
  return (err: unknown) => err instanceof AppError && err.code === code;
}

async function recognize(svc: CvServe, bytes: Buffer, query = ''): Promise<Recognized[]> {
  const res = await request(svc.app).post(`/facerecognition${query}`).set('Content-Type', 'image/jpeg').send(bytes);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.status, 'ok');
  return res.body.result as Recognized[];
}

/** Which original face each face of the transformed photo is (by position). */
function identities(found: Recognized[], boxes: FaceBox[]): number[] {
  return found.map((f) => {
    const [x, y] = untransform(f.box, SCALE);
    const { index, distance } = nearest(boxes, x, y);
    assert.ok(distance < 8, `a face of the transformed photo maps back to an original face (${distance.toFixed(1)} px)`);
    return index;
  });
}

const engines = new SharedEngines();
/** The 17 faces of the original photo, largest first. */
let boxes: FaceBox[];
/** A crop around each of them. */
let crops: Buffer[];
let transformed: Buffer;

before(async () => {
  boxes = (await engines.base.face.detect({ ...(await sharp(PHOTO).raw().toBuffer({ resolveWithObject: true }).then(({ data, info }) => ({ data, width: info.width, height: info.height, channels: 3 as const }))) })).map((f) => f.box);
  assert.equal(boxes.length, 17);
  crops = await Promise.all(boxes.map((b) => cropAround(b)));
  transformed = await transformedPhoto(SCALE);
});

after(async () => {
  await engines.close();
  await stopTestServer();
});

for (const makeStore of [sqliteStore, postgresStore]) {
  describe(`face recognition on ${makeStore === sqliteStore ? 'SQLite' : 'PostgreSQL'}`, () => {
    let store: Store;
    let svc: CvServe;
    const captured = capturingLog();
    const ALICE = 'alice-7f3a9c';
    /** Alice is the largest face of the photo. */
    const P = 0;
    let aliceDescriptors: Buffer[] = [];

    before(async () => {
      store = await makeStore();
      svc = await engines.app(faceTestConfig({ ...store.settings, logLevel: 'debug' }), { log: captured.log });
    });
    after(async () => {
      await svc?.close();
      await store?.destroy();
    });

    it('registers one person cropped from the photo and recognizes them, and only them, in a flipped, rescaled copy of the whole photo', async (t) => {
      const reg = await svc.faces.register(ALICE, [{ field: 'image', bytes: crops[P]! }], NEVER);
      assert.deepEqual(reg, { userid: ALICE, added: 1, duplicates: 0, images: [{ field: 'image', status: 'added' }] });
      const found = await recognize(svc, transformed);
      assert.equal(found.length, 17, 'every face of the transformed photo is reported');
      const who = identities(found, boxes);
      const alice = found.filter((f) => f.userid === ALICE);
      assert.equal(alice.length, 1, 'alice is found once');
      assert.equal(who[found.indexOf(alice[0]!)], P, 'at her place in the photo');
      assert.ok(alice[0]!.confidence >= 0.67 && alice[0]!.confidence <= 1);
      const others = found.filter((f) => f !== alice[0]);
      assert.ok(others.every((f) => f.userid === 'unknown' && f.confidence < 0.67), 'the other 16 are unknown');
      t.diagnostic(`alice ${alice[0]!.confidence}; strangers at most ${Math.max(...others.map((f) => f.confidence))}`);
      // Boxes are in the transformed photo's pixels.
      for (const f of found) assert.ok(f.box[0] >= 0 && f.box[2] <= Math.round(W * SCALE) && f.box[3] <= Math.round(H * SCALE) && f.box[0] < f.box[2]);
    });

    it('register adds photos to a user; the same photo again is not stored twice', async () => {
      const other = await sharp(crops[P]!).resize({ width: 160 }).jpeg({ quality: 80 }).toBuffer(); // another photo of alice
      const second = await svc.faces.register(ALICE, [{ field: 'image1', bytes: other }], NEVER);
      assert.deepEqual(second, { userid: ALICE, added: 1, duplicates: 0, images: [{ field: 'image1', status: 'added' }] });
      const again = await svc.faces.register(ALICE, [{ field: 'image', bytes: crops[P]! }, { field: 'image2', bytes: crops[P]! }], NEVER);
      assert.equal(again.added, 0);
      assert.deepEqual(again.images.map((i) => i.status), ['duplicate', 'duplicate']);
      assert.deepEqual(await svc.faces.list(), [{ userid: ALICE, photos: 2 }]);
      assert.equal(await store.rowsFor(ALICE), 2);
    });

    it('says per file which image had no face or was no image; with no face at all it is NO_FACE and nothing is stored', async () => {
      const third = await sharp(crops[P]!).flop().jpeg().toBuffer();
      const mixed = await svc.faces.register(
        ALICE,
        [
          { field: 'image', bytes: CAR },
          { field: 'image1', bytes: third },
          { field: 'image2', bytes: Buffer.from('not an image at all') },
          { field: 'image3', bytes: CAT },
        ],
        NEVER,
      );
      assert.deepEqual(
        mixed.images.map((i) => [i.field, i.status]),
        [['image', 'no face'], ['image1', 'added'], ['image2', 'invalid image'], ['image3', 'no face']],
      );
      assert.equal(mixed.images[0]!.message, 'No face found in image');
      assert.match(mixed.images[2]!.message!, /Unsupported image type/);
      assert.equal(mixed.added, 1);
      await assert.rejects(svc.faces.register('bob', [{ field: 'image', bytes: CAT }, { field: 'image5', bytes: Buffer.from('GIF89a') }], NEVER), (err: unknown) => {
        assert.ok(err instanceof AppError && err.code === 'NO_FACE' && err.status === 400);
        assert.equal(err.publicMessage, 'No face found in any image (no face: image; not a valid image: image5)');
        return true;
      });
      await assert.rejects(svc.faces.register('bob', [{ field: 'image', bytes: Buffer.from('nope') }], NEVER), isAppError('UNSUPPORTED_MEDIA_TYPE'));
      assert.deepEqual((await svc.faces.list()).map((u) => u.userid), [ALICE], 'bob was not created');
      aliceDescriptors = await store.descriptorsOf(ALICE);
      assert.equal(aliceDescriptors.length, 3);
    });

    it('match: the same person in two different photos is similar, two people are not, a faceless image is NO_FACE', async () => {
      const inTransformed = await sharp(transformed)
        .extract({ left: Math.round((W - boxes[P]![2]) * SCALE) - 40, top: Math.round(boxes[P]![1] * SCALE) - 40, width: 130, height: 150 })
        .jpeg()
        .toBuffer();
      const same = await svc.faces.match(crops[P]!, inTransformed, NEVER);
      const different = await svc.faces.match(crops[P]!, crops[5]!, NEVER);
      assert.ok(same.similarity >= 0.67, `same person ${same.similarity}`);
      assert.ok(different.similarity < 0.67, `different people ${different.similarity}`);
      await assert.rejects(svc.faces.match(crops[P]!, CAT, NEVER), (err: unknown) => err instanceof AppError && err.code === 'NO_FACE' && err.publicMessage === 'No face found in image2');
      await assert.rejects(svc.faces.register('bob', [{ field: 'image', bytes: CAT }], NEVER), (err: unknown) => err instanceof AppError && err.code === 'NO_FACE' && err.publicMessage === 'No face found in image');
    });

    it('delete removes the user and every descriptor: the rows are gone from the database', async () => {
      if (store.name === 'SQLite') {
        const bytes = readFileSync(galleryFile(store.settings.dataDir));
        assert.ok(aliceDescriptors.every((d) => bytes.includes(d)), 'before: the descriptors are in the file (the check below can fail)');
      }
      assert.deepEqual(await svc.faces.delete(ALICE), { deleted: 3 });
      assert.deepEqual(await svc.faces.delete(ALICE), { deleted: 0 }, 'deleting an unknown user deletes nothing');
      assert.deepEqual(await svc.faces.list(), []);
      assert.equal(await store.rowsFor(ALICE), 0);
      if (store.name === 'SQLite') {
        // secure_delete: the deleted rows' bytes are overwritten in the file, and no journal keeps them.
        const file = galleryFile(store.settings.dataDir);
        const bytes = readFileSync(file);
        for (const d of aliceDescriptors) assert.ok(!bytes.includes(d), 'a deleted descriptor is not in the file');
        assert.ok(!bytes.includes(Buffer.from(ALICE)), 'nor the userid');
        assert.ok(!existsSync(`${file}-journal`) && !existsSync(`${file}-wal`));
      }
      const found = await recognize(svc, transformed);
      assert.equal(found.length, 17);
      assert.ok(found.every((f) => f.userid === 'unknown'), 'alice is not recognized any more');
    });

    it('17 people registered as 17 users are each recognized as themselves in the flipped, rescaled copy', async (t) => {
      for (let i = 0; i < crops.length; i++) {
        const r = await svc.faces.register(`person-${i}`, [{ field: 'image', bytes: crops[i]! }], NEVER);
        assert.equal(r.added, 1, `person-${i} registered`);
      }
      const found = await recognize(svc, transformed);
      assert.equal(found.length, 17);
      const who = identities(found, boxes);
      assert.deepEqual(
        found.map((f) => f.userid),
        who.map((i) => `person-${i}`),
      );
      assert.equal(new Set(who).size, 17, 'each person once');
      const conf = found.map((f) => f.confidence);
      t.diagnostic(`17 users: confidences ${Math.min(...conf).toFixed(3)}..${Math.max(...conf).toFixed(3)} (median ${conf.sort((a, b) => a - b)[8]!.toFixed(3)})`);
    });

    it('strangers come back "unknown": the 9 people not registered, and a face from another photo', async () => {
      for (let i = 8; i < 17; i++) assert.deepEqual(await svc.faces.delete(`person-${i}`), { deleted: 1 });
      const found = await recognize(svc, transformed);
      const who = identities(found, boxes);
      assert.equal(found.length, 17);
      found.forEach((f, k) => assert.equal(f.userid, who[k]! < 8 ? `person-${who[k]}` : 'unknown', `face of person ${who[k]}`));
      // A stranger's confidence is exact: /match's similarity of that face and its nearest registered person.
      const nine = await recognize(svc, crops[9]!);
      assert.ok(nine.length > 0);
      const area = (b: readonly number[]) => (b[2]! - b[0]!) * (b[3]! - b[1]!);
      const stranger = nine.reduce((a, b) => (area(b.box) > area(a.box) ? b : a));
      const similarities = await Promise.all(Array.from({ length: 8 }, (_, j) => svc.faces.match(crops[j]!, crops[9]!, NEVER)));
      assert.equal(stranger.userid, 'unknown');
      assert.equal(stranger.confidence, Math.max(...similarities.map((m) => m.similarity)), 'recognize\'s confidence = the nearest /match similarity');
      assert.ok(stranger.confidence > 0, `the nearest stranger scores above 0 (${stranger.confidence})`);
      const astronaut = await recognize(svc, ASTRONAUT);
      assert.equal(astronaut.length, 1);
      assert.equal(astronaut[0]!.userid, 'unknown');
      assert.deepEqual(await recognize(svc, CAT), [], 'no face, no answer');
      // A lax min_confidence (e.g. deepstack-python's 0.45) still keeps these strangers out:
      // the nearest strangers measure about 0.43.
      const lax = await recognize(svc, transformed, '?minConfidence=0.45');
      assert.equal(lax.length, 17);
      lax.forEach((f, k) => assert.equal(f.userid, who[k]! < 8 ? `person-${who[k]}` : 'unknown'));
    });

    it('the gallery survives a restart (a new app on the same store)', async () => {
      await svc.close();
      svc = await engines.app(faceTestConfig({ ...store.settings, logLevel: 'debug' }), { log: captured.log });
      assert.deepEqual(
        (await svc.faces.list()).map((u) => [u.userid, u.photos]),
        Array.from({ length: 8 }, (_, i) => [`person-${i}`, 1]).sort(),
      );
      const found = await recognize(svc, transformed);
      assert.equal(found.filter((f) => f.userid !== 'unknown').length, 8);
    });

    it('draws the names on the boxes with draw=true', async () => {
      const res = await request(svc.app).post('/facerecognition?draw=true&format=png').set('Content-Type', 'image/jpeg').send(transformed);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'image/png');
      const meta = await sharp(res.body as Buffer).metadata();
      assert.deepEqual([meta.width, meta.height], [Math.round(W * SCALE), Math.round(H * SCALE)]);
      // Along each box the answer, the pixels are the stroke's (and the name tag's), not the photo's.
      // (The boxes from the engine itself: a recognition here would change the metrics counted below.)
      const { data, info } = await sharp(transformed).raw().toBuffer({ resolveWithObject: true });
      const found = await engines.base.face.detect({ data, width: info.width, height: info.height, channels: 3 as const });
      assert.equal(found.length, 17);
      const change = await outlineChange(transformed, res.body as Buffer, found.map((f) => f.box));
      assert.ok(change.every((c) => c >= 0.8), `outline pixels changed per box: ${change.map((c) => c.toFixed(2)).join(' ')}`);
    });

    it('metrics: gallery size, recognize latency, faces recognized and unknown', async () => {
      await recognize(svc, transformed);
      const text = (await request(svc.app).get('/metrics')).text;
      assert.match(text, /^cvserve_face_gallery_size\{kind="users"\} 8$/m);
      assert.match(text, /^cvserve_face_gallery_size\{kind="descriptors"\} 8$/m);
      // Since the restart: three recognitions of the transformed photo (one drawn), 8 known and 9 strangers each.
      assert.match(text, /^cvserve_face_recognize_seconds_count 3$/m);
      assert.match(text, /^cvserve_face_matches_total\{outcome="recognized"\} 24$/m);
      assert.match(text, /^cvserve_face_matches_total\{outcome="unknown"\} 27$/m);
      assert.match(text, /^cvserve_pool_up\{pool="face"\} 1$/m, 'the face pool is reported with the others');
    });

    it('never logs anything of a face: no descriptor, photo hash or photo bytes, no userid', async () => {
      const descriptors = await store.descriptorsOf('person-0');
      assert.equal(descriptors.length, 1);
      const text = captured.text();
      assert.ok(text.length > 1000, 'the app did log (requests at least)');
      const forbidden: [string, string][] = [];
      for (const d of [...descriptors, ...aliceDescriptors]) {
        forbidden.push(['descriptor base64', d.toString('base64').slice(0, 24)], ['descriptor hex', d.toString('hex').slice(0, 24)]);
        forbidden.push(['descriptor as numbers', String(d.readFloatLE(0)).slice(0, 8)]);
      }
      for (const photo of [crops[0]!, transformed]) {
        forbidden.push(['photo base64', photo.subarray(200, 248).toString('base64')]);
        forbidden.push(['photo sha256', (await import('node:crypto')).createHash('sha256').update(photo).digest('hex')]);
      }
      forbidden.push(['userid', ALICE], ['userid', 'person-3']);
      for (const [what, needle] of forbidden) assert.ok(!text.includes(needle), `the logs hold no ${what}`);
    });
  });
}
