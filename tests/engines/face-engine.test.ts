import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import sharp, { type Sharp } from 'sharp';
import { DEFAULT_FACE_MIN_CONFIDENCE, FaceEngine, type FaceBox, type FaceDescription } from '../../src/engines/face/engine.js';
import { AppError } from '../../src/errors.js';
import type { GallerySnapshot } from '../../src/faces/gallery.js';
import { calibrationFor, descriptorDistance, matchFace } from '../../src/faces/match.js';
import type { RawImage } from '../../src/image/types.js';
import { image, reference } from '../helpers/paths.js';

const PHOTO = image('test_face_processing.jpg');
const W = 640;
const H = 482;

async function rgbOf(pipeline: Sharp): Promise<RawImage> {
  const { data, info } = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
}

const centre = (b: FaceBox) => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] as const;
const area = (b: FaceBox) => (b[2] - b[0]) * (b[3] - b[1]);

/** Index of the face whose centre is nearest (x, y), with that distance. */
function nearestFace(faces: { box: FaceBox }[], x: number, y: number): { index: number; distance: number } {
  let index = -1;
  let distance = Number.POSITIVE_INFINITY;
  faces.forEach((f, i) => {
    const [cx, cy] = centre(f.box);
    const d = Math.hypot(cx - x, cy - y);
    if (d < distance) [index, distance] = [i, d];
  });
  return { index, distance };
}

function snapshotOf(faces: FaceDescription[], userid: (i: number) => string): GallerySnapshot {
  const vectors = new Float32Array(faces.length * 128);
  faces.forEach((f, i) => vectors.set(f.descriptor, i * 128));
  return { model: { name: 'test', version: '0' }, generation: 0, userids: faces.map((_, i) => userid(i)), vectors };
}

describe('FaceEngine (face-api SSD + landmarks + ResNet descriptors on tfjs wasm, in a worker)', () => {
  let engine: FaceEngine;
  let photo: RawImage;
  let original: FaceDescription[];
  /** Flipped left-right and rescaled 1.5x: a different image of the same 17 people. */
  let flipped: FaceDescription[];
  const FLIP_SCALE = 1.5;
  /** A face of the flipped copy, back in the original photo's coordinates. */
  const unflip = (b: FaceBox) => {
    const [x, y] = centre(b);
    return [W - x / FLIP_SCALE, y / FLIP_SCALE] as const;
  };
  let tensorsAfterLoad: number;

  before(async () => {
    engine = new FaceEngine({ workers: 1, maxQueue: 8 });
    assert.equal(engine.started, false, 'nothing starts before the first task');
    assert.deepEqual(engine.stats(), []);
    photo = await rgbOf(sharp(PHOTO));
    const [load] = await engine.loadTimes();
    tensorsAfterLoad = load!.numTensors;
    original = await engine.describe(photo);
    flipped = await engine.describe(await rgbOf(sharp(PHOTO).flop().resize(Math.round(W * FLIP_SCALE))));
  });
  after(() => engine.close());

  it('names its model with a version that pins the weights', () => {
    assert.equal(engine.model.name, 'face-api-ssd-resnet128');
    assert.match(engine.model.version, /^1\.7\.15\+[0-9a-f]{12}$/);
  });

  it('finds the 17 faces of test_face_processing.jpg, the same people OpenCV\'s Haar cascade finds, largest first', async (t) => {
    const faces = await engine.detect(photo);
    t.diagnostic(`scores: ${faces.map((f) => f.score.toFixed(3)).join(' ')}`);
    assert.equal(faces.length, 17);
    assert.ok(faces.every((f) => f.score >= 0.7), 'every face scores 0.7 or more');
    for (let i = 1; i < faces.length; i++) assert.ok(area(faces[i - 1]!.box) >= area(faces[i]!.box), 'largest first');
    // Native OpenCV's Haar boxes for the same photo: one SSD face inside each, one to one.
    const haar = (JSON.parse(readFileSync(reference('opencv-native.json'), 'utf8')) as { images: Record<string, { faces: FaceBox[] }> }).images['test_face_processing.jpg']!.faces;
    const matched = new Set<number>();
    for (const h of haar) {
      const [x, y] = centre(h);
      const { index, distance } = nearestFace(faces, x, y);
      assert.ok(distance < 10, `a face near the Haar face at ${x},${y}`);
      matched.add(index);
    }
    assert.equal(matched.size, 17);
    // describe() finds the same faces as detect().
    assert.deepEqual(original.map((f) => f.box), faces.map((f) => f.box));
    assert.ok(original.every((f) => f.descriptor instanceof Float32Array && f.descriptor.length === 128));
  });

  it('a face cropped from the photo is nearest to the same person in a flipped, rescaled copy, for all 17', async (t) => {
    assert.equal(flipped.length, 17, 'the flipped copy shows all 17 faces');
    const margins: number[] = [];
    const same: number[] = [];
    for (const face of original) {
      const [bx0, by0, bx1, by1] = face.box;
      const w = bx1 - bx0;
      const h = by1 - by0;
      const left = Math.max(0, bx0 - w);
      const top = Math.max(0, by0 - h);
      const crop = { left, top, width: Math.min(W, bx1 + w) - left, height: Math.min(H, by1 + h) - top };
      const found = await engine.describe(await rgbOf(sharp(PHOTO).extract(crop)));
      const [cx, cy] = centre(face.box);
      const own = found[nearestFace(found, cx - left, cy - top).index];
      assert.ok(own, `the face at ${cx},${cy} is found in its crop`);
      const distances = flipped.map((f) => descriptorDistance(own.descriptor, f.descriptor));
      const [ux, uy] = [cx, cy];
      const target = nearestFace(flipped.map((f) => ({ box: [...unflip(f.box), ...unflip(f.box)] as FaceBox })), ux, uy).index;
      const nearest = distances.indexOf(Math.min(...distances));
      assert.equal(nearest, target, `the face at ${cx},${cy} is nearest to itself`);
      const other = Math.min(...distances.filter((_, i) => i !== target));
      same.push(distances[target]!);
      margins.push(other - distances[target]!);
      // The group photo's faces are small: the threshold of their curve (README "Faces").
      const { threshold } = calibrationFor(own.box[2] - own.box[0]);
      assert.ok(distances[target]! < threshold && other > threshold, `threshold ${threshold} separates them at ${cx},${cy}`);
    }
    t.diagnostic(`same person ${Math.min(...same).toFixed(3)}..${Math.max(...same).toFixed(3)}; margin to the nearest other ${Math.min(...margins).toFixed(3)}..${Math.max(...margins).toFixed(3)}`);
  });

  it('17 people registered from the photo are each recognized in the flipped copy; strangers are unknown', async (t) => {
    // Registered: every face of the original, as user "person-<i>".
    const all = snapshotOf(original, (i) => `person-${i}`);
    const confidences: number[] = [];
    for (const f of flipped) {
      const [x, y] = unflip(f.box);
      const expected = `person-${nearestFace(original, x, y).index}`;
      const match = matchFace(all, f.descriptor, { faceWidth: f.box[2] - f.box[0] });
      assert.equal(match.userid, expected);
      confidences.push(match.confidence);
    }
    t.diagnostic(`confidence of the 17 matches: ${Math.min(...confidences).toFixed(3)}..${Math.max(...confidences).toFixed(3)}`);
    // Registered: only the first 8; the other 9 people are strangers.
    const some = snapshotOf(original.slice(0, 8), (i) => `person-${i}`);
    let known = 0;
    let unknown = 0;
    for (const f of flipped) {
      const [x, y] = unflip(f.box);
      const index = nearestFace(original, x, y).index;
      const match = matchFace(some, f.descriptor, { faceWidth: f.box[2] - f.box[0] });
      if (index < 8) {
        assert.equal(match.userid, `person-${index}`);
        known++;
      } else {
        assert.equal(match.userid, undefined, `stranger ${index} is unknown (nearest at ${match.distance.toFixed(3)})`);
        unknown++;
      }
    }
    assert.deepEqual([known, unknown], [8, 9]);
  });

  it('finds no face in photos without one', async () => {
    const car = sharp(image('car.jpg'));
    assert.deepEqual(await engine.describe(await rgbOf(car.clone().extract({ left: 900, top: 500, width: 800, height: 600 }))), []);
    assert.deepEqual(await engine.detect(await rgbOf(car.clone())), []);
    assert.deepEqual(await engine.detect(await rgbOf(sharp(image('cat_small.jpg')))), []);
    assert.equal(DEFAULT_FACE_MIN_CONFIDENCE, 0.4);
  });

  it('takes RGBA and gray pixels, and shrinks large images inside the worker, boxes in original pixels', async () => {
    const rgba: RawImage = { ...photo, channels: 4, data: new Uint8Array(photo.width * photo.height * 4).fill(255) };
    for (let i = 0; i < photo.width * photo.height; i++) rgba.data.set(photo.data.subarray(i * 3, i * 3 + 3), i * 4);
    assert.deepEqual((await engine.detect(rgba)).map((f) => f.box), original.map((f) => f.box), 'alpha dropped: the same faces');
    const { data, info } = await sharp(PHOTO).grayscale().raw().toBuffer({ resolveWithObject: true });
    const gray = await engine.detect({ data: new Uint8Array(data), width: info.width, height: info.height, channels: 1 });
    assert.ok(gray.length >= 15, `gray: ${gray.length} faces`);
    // 4x (2560 px wide) is shrunk to 1920 for detection; its boxes come back in its own pixels.
    const big = await rgbOf(sharp(PHOTO).resize(W * 4));
    const bigFaces = await engine.detect(big);
    assert.equal(bigFaces.length, 17);
    for (const f of original) {
      const [x, y] = centre(f.box);
      const { index, distance } = nearestFace(bigFaces, x * 4, y * 4);
      assert.ok(distance < 12, `face at ${x},${y} found at 4x (off by ${distance.toFixed(1)} px)`);
      const b = bigFaces[index]!.box;
      assert.ok(Math.abs((b[2] - b[0]) / 4 - (f.box[2] - f.box[0])) < 4, 'box width scaled back');
    }
  });

  it('disposes every tensor: the count after a task equals the count after loading, call after call', async () => {
    const car = await rgbOf(sharp(image('car.jpg')).resize(800));
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) {
      counts.push((await engine.run('describe', i % 2 ? car : photo)).numTensors);
      counts.push((await engine.run('detect', photo, { maxFaces: 3 })).numTensors);
    }
    assert.deepEqual(counts, Array(12).fill(tensorsAfterLoad));
    assert.ok(tensorsAfterLoad > 0);
  });

  it('keeps the most confident faces up to maxFaces, and checks min_confidence', async () => {
    const three = await engine.detect(photo, { maxFaces: 3 });
    assert.equal(three.length, 3);
    const top3 = (await engine.detect(photo)).map((f) => f.score).sort((a, b) => b - a).slice(0, 3);
    assert.deepEqual(three.map((f) => f.score).sort((a, b) => b - a), top3);
    const strict = await engine.detect(photo, { minConfidence: 0.99 });
    const all = await engine.detect(photo);
    assert.ok(strict.length > 0 && strict.length < all.length, `${strict.length} of ${all.length} faces at 0.99`);
    assert.deepEqual(strict.map((f) => f.score).sort(), all.map((f) => f.score).filter((s) => s >= 0.99).sort());
    await assert.rejects(engine.detect(photo, { minConfidence: 1.5 }), RangeError); // callers validate; out of range here is a bug
  });

  it('reports its pool like the other engines', () => {
    const [stats] = engine.stats();
    assert.equal(stats?.name, 'face');
    assert.equal(stats?.up, true);
    assert.ok(stats!.heapBytes > 0, 'the wasm heap is reported');
  });
});

describe('FaceEngine queue', () => {
  let engine: FaceEngine;
  let photo: RawImage;
  before(async () => {
    engine = new FaceEngine({ workers: 1, maxQueue: 1 });
    await engine.ready();
    photo = await rgbOf(sharp(PHOTO));
  });
  after(() => engine.close());

  it('refuses work past the queue with QUEUE_FULL (503, Retry-After) and drops queued work whose caller aborted', async () => {
    const running = engine.detect(photo);
    const abort = new AbortController();
    const queued = engine.detect(photo, {}, abort.signal);
    const refused = engine.detect(photo);
    await assert.rejects(refused, (err: unknown) => err instanceof AppError && err.code === 'QUEUE_FULL' && err.status === 503 && err.headers['Retry-After'] === '1');
    abort.abort(new Error('client went away'));
    await assert.rejects(queued, /client went away/);
    assert.equal((await running).length, 17);
    const [stats] = engine.stats();
    assert.deepEqual([stats!.rejected, stats!.dropped, stats!.completed], [1, 1, 1]);
  });
});
