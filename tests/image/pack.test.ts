import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import sharp from 'sharp';
import { jpegAddon } from '../../src/image/jpeg-decoder.js';
import { allocateBatch, packFeed, packImage, packImageInJs, packSpaceToDepth, type PackSpec } from '../../src/image/pack.js';
import { image } from '../helpers/paths.js';

const CLASSIFIER: PackSpec = { channels: 'RGB', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], layout: 'NCHW', dtype: 'float32' };
const DETECTOR: PackSpec = { channels: 'BGR', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], layout: 'NCHW', dtype: 'float32' };
const TEXT: PackSpec = { channels: 'BGR', scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], layout: 'NHWC', dtype: 'float32' };

test('the addon packs float inputs to exactly the floats JavaScript computes', async () => {
  assert.ok(jpegAddon()?.packFloat32, 'the addon packs');
  const { data: photo, info } = await sharp(readFileSync(image('cat_small.jpg'))).resize(61, 37, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  const every = Uint8Array.from({ length: 256 * 3 }, (_, i) => (i * 7) % 256);
  for (const [name, rgb, pixels] of [['photo', photo, info.width * info.height], ['every value', every, 256]] as const) {
    for (const [specName, spec] of [['classifier', CLASSIFIER], ['detector', DETECTOR], ['text NHWC', TEXT]] as const) {
      for (const index of [0, 1]) {
        const ours = packImage(rgb, pixels, spec, allocateBatch('float32', 2, pixels) as Float32Array, index);
        const theirs = packImageInJs(rgb, pixels, spec, allocateBatch('float32', 2, pixels) as Float32Array, index);
        assert.ok(Buffer.from(ours.buffer).equals(Buffer.from(theirs.buffer)), `${name}, ${specName}, image ${index}: same floats`);
        assert.notDeepEqual([...ours.subarray(index * pixels * 3, index * pixels * 3 + 4)], [0, 0, 0, 0], 'written where asked');
      }
    }
  }
});

test('the addon refuses an output too small for the pixels', () => {
  const pack = jpegAddon()!.packFloat32!;
  assert.throws(() => pack(new Uint8Array(30), 10, new Float32Array(29), 0, true, 0, 1, 2, 1, 1, 1, 0, 0, 0), RangeError);
  assert.throws(() => pack(new Uint8Array(30), 10, new Float32Array(30), 1, true, 0, 1, 2, 1, 1, 1, 0, 0, 0), RangeError);
  assert.throws(() => pack(new Uint8Array(29), 10, new Float32Array(30), 0, true, 0, 1, 2, 1, 1, 1, 0, 0, 0), RangeError);
  assert.throws(() => pack(new Uint8Array(30), 10, new Float32Array(30), 0, true, 0, 1, 3, 1, 1, 1, 0, 0, 0), TypeError);
});

test('uint8 inputs are packed in JavaScript', () => {
  const rgb = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  const out = packImage(rgb, 2, { ...DETECTOR, dtype: 'uint8' }, new Uint8Array(6));
  assert.deepEqual([...out], [3, 6, 2, 5, 1, 4]);
});

test('packFeed packs a batch of RGB images as its float dims say, as packImage and packSpaceToDepth do', async () => {
  const { data: photo } = await sharp(readFileSync(image('cat_small.jpg'))).resize(62, 38, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  const pixels = 62 * 38;
  const two = new Uint8Array(pixels * 6);
  two.set(photo);
  two.set(photo.map((v) => 255 - v), pixels * 3);
  const blocks = [[0, 0], [1, 0], [0, 1], [1, 1]] as const;
  const cases: Array<[string, number[], Parameters<typeof packFeed>[2], (out: Float32Array, i: number) => void]> = [
    ['NCHW', [2, 3, 38, 62], { spec: CLASSIFIER }, (out, i) => packImage(two.subarray(i * pixels * 3, (i + 1) * pixels * 3), pixels, CLASSIFIER, out, i)],
    ['NHWC', [2, 38, 62, 3], { spec: TEXT }, (out, i) => packImage(two.subarray(i * pixels * 3, (i + 1) * pixels * 3), pixels, TEXT, out, i)],
    ['space-to-depth', [2, 12, 19, 31], { spec: DETECTOR, blocks }, (out, i) => packSpaceToDepth(two.subarray(i * pixels * 3, (i + 1) * pixels * 3), 62, 38, DETECTOR, blocks, out, i)],
  ];
  for (const [name, dims, packing, pack] of cases) {
    const expected = new Float32Array(pixels * 6);
    pack(expected, 0);
    pack(expected, 1);
    const got = packFeed(two, dims, packing);
    assert.ok(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)), `${name}: same floats`);
    // A buffer of the right size is refilled in place (stale values from another image and all);
    // one of another size is not used.
    const stale = new Float32Array(pixels * 6).fill(Number.NaN);
    assert.equal(packFeed(two, dims, packing, stale), stale, `${name}: refilled in place`);
    assert.ok(Buffer.from(stale.buffer).equals(Buffer.from(expected.buffer)), `${name}: every value rewritten`);
    const wrong = new Float32Array(pixels * 3);
    assert.notEqual(packFeed(two, dims, packing, wrong), wrong, `${name}: a buffer of another size is not used`);
  }
  assert.throws(() => packFeed(two.subarray(1), [2, 3, 38, 62], { spec: CLASSIFIER }), /do not fill/);
  assert.throws(() => packFeed(two, [1, 3, 38, 62], { spec: CLASSIFIER }), /do not fill/);
});
