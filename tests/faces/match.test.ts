import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GallerySnapshot } from '../../src/faces/gallery.js';
import { decodeDescriptorInto, encodeDescriptor } from '../../src/faces/gallery.js';
import {
  calibrationFor,
  CONFIDENCE_SCALE,
  confidenceToDistance,
  DEFAULT_MATCH_THRESHOLD,
  DEFAULT_MIN_CONFIDENCE,
  descriptorDistance,
  distanceToConfidence,
  matchFace,
  nearestUser,
  similarity,
  SMALL_FACE_PX,
} from '../../src/faces/match.js';
import { fakeDescriptor } from './backends.js';

/** A descriptor at exactly `distance` from `base` (moved along one axis). */
function at(base: Float32Array, distance: number): Float32Array {
  const out = Float32Array.from(base);
  out[0]! += distance;
  return out;
}

function snapshotOf(users: [string, Float32Array][]): GallerySnapshot {
  const vectors = new Float32Array(users.length * 128);
  users.forEach(([, d], i) => vectors.set(d, i * 128));
  return { model: { name: 'm', version: '1' }, generation: 1, userids: users.map(([u]) => u), vectors };
}

describe('distance → confidence calibration', () => {
  it('maps the threshold to DeepStack\'s default min_confidence 0.67, and is a logistic of slope 0.03 (0.06 for small faces)', () => {
    assert.equal(DEFAULT_MATCH_THRESHOLD, 0.58);
    assert.ok(Math.abs(distanceToConfidence(0.58) - 0.67) < 1e-12);
    assert.ok(Math.abs(distanceToConfidence(0.6, { threshold: 0.6, scale: CONFIDENCE_SCALE }) - 0.67) < 1e-12, 'follows the configured threshold');
    assert.equal(CONFIDENCE_SCALE, 0.03);
    // The measured distances on real second photos (see match.ts): same person 0.34-0.505 (held out: up to 0.556),
    // the nearest stranger 0.613, portraits of strangers 0.687 (held out) and 0.79 or more.
    assert.equal(distanceToConfidence(0.505).toFixed(2), '0.96');
    assert.equal(distanceToConfidence(0.556).toFixed(2), '0.82');
    assert.equal(distanceToConfidence(0.613).toFixed(2), '0.40');
    assert.equal(distanceToConfidence(0.687).toFixed(2), '0.05');
    assert.ok(distanceToConfidence(0.79) < 0.003);
    assert.ok(distanceToConfidence(0) > 0.999);
    // Faces under SMALL_FACE_PX keep the curve measured on 30 px faces: threshold 0.45, slope 0.06.
    assert.equal(SMALL_FACE_PX, 64);
    assert.deepEqual(calibrationFor(63), { threshold: 0.58 - 0.13, scale: 0.06 });
    assert.deepEqual(calibrationFor(64), { threshold: 0.58, scale: 0.03 });
    assert.equal(distanceToConfidence(0.51, calibrationFor(30)).toFixed(2), '0.43');
  });

  it('is strictly decreasing, and confidenceToDistance inverts it', () => {
    let last = 2;
    for (let d = 0; d <= 1.5; d += 0.01) {
      const c = distanceToConfidence(d);
      assert.ok(c < last && c > 0 && c < 1, `c(${d.toFixed(2)})`);
      last = c;
      if (c > 1e-9 && c < 1 - 1e-6) assert.ok(Math.abs(confidenceToDistance(c) - d) < 1e-6, `inverse at ${d.toFixed(2)}`);
    }
    assert.equal(confidenceToDistance(0), Number.POSITIVE_INFINITY);
    assert.equal(confidenceToDistance(1), Number.NEGATIVE_INFINITY);
  });
});

describe('matchFace (nearest neighbour over the gallery)', () => {
  const alice = fakeDescriptor(1);
  const bob = fakeDescriptor(2);
  const gallery = snapshotOf([
    ['alice', alice],
    ['bob', bob],
    ['alice', at(alice, 0.3)],
  ]);

  it('names the nearest user within the threshold, with the calibrated confidence', () => {
    const probe = at(alice, 0.2);
    const m = matchFace(gallery, probe);
    assert.equal(m.userid, 'alice');
    assert.ok(Math.abs(m.distance - 0.1) < 1e-6, 'nearest of the user\'s photos counts');
    assert.equal(m.confidence, distanceToConfidence(m.distance));
  });

  it('a face exactly at the threshold is the user; just past it is a stranger (for a small face, at its threshold)', () => {
    assert.equal(matchFace(gallery, at(alice, -0.5799)).userid, 'alice');
    const stranger = matchFace(gallery, at(alice, -0.5801));
    assert.equal(stranger.userid, undefined);
    assert.ok(stranger.confidence < DEFAULT_MIN_CONFIDENCE);
    assert.equal(matchFace(gallery, at(alice, -0.4499), { faceWidth: 40 }).userid, 'alice');
    assert.equal(matchFace(gallery, at(alice, -0.4501), { faceWidth: 40 }).userid, undefined);
  });

  it('min_confidence moves the cut: lower accepts farther faces, higher refuses nearer ones', () => {
    const probe = at(alice, -0.62);
    assert.equal(matchFace(gallery, probe).userid, undefined);
    assert.equal(matchFace(gallery, probe, { minConfidence: 0.3 }).userid, 'alice');
    assert.equal(matchFace(gallery, at(alice, -0.5), { minConfidence: 0.97 }).userid, undefined);
    assert.equal(matchFace(gallery, at(alice, -0.5), { minConfidence: 0 }).userid, 'alice');
    assert.equal(matchFace(gallery, alice, { minConfidence: 1 }).userid, undefined);
  });

  it('a random other face is a stranger; an empty gallery knows nobody', () => {
    const other = fakeDescriptor(99);
    assert.ok(descriptorDistance(other, alice) > 1);
    assert.equal(matchFace(gallery, other).userid, undefined);
    assert.deepEqual(matchFace(snapshotOf([]), alice), { userid: undefined, confidence: 0, distance: Number.POSITIVE_INFINITY });
    assert.equal(nearestUser(snapshotOf([]), alice), undefined);
    assert.equal(nearestUser(gallery, bob)?.userid, 'bob');
  });

  it('similarity of two descriptors uses the same calibration', () => {
    assert.equal(similarity(alice, at(alice, 0.58)).toFixed(4), '0.6700');
    assert.equal(similarity(alice, at(alice, 0.45), 0.58, 30).toFixed(4), '0.6700', 'the smaller face decides the curve');
    assert.ok(similarity(alice, alice) > 0.999);
  });
});

describe('descriptor bytes', () => {
  it('are 512 bytes of float32 little-endian and round-trip exactly', () => {
    const d = fakeDescriptor(7);
    const bytes = encodeDescriptor(d);
    assert.equal(bytes.length, 512);
    assert.equal(bytes.readFloatLE(4), d[1]);
    const back = new Float32Array(256);
    decodeDescriptorInto(bytes, back, 128);
    assert.deepEqual([...back.subarray(128)], [...d]);
  });
});
