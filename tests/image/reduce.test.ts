import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import sharp from 'sharp';
import { openImage } from '../../src/image/decode.js';
import { jpegAddon } from '../../src/image/jpeg-decoder.js';
import { prepareImage } from '../../src/image/preprocess.js';
import { reduce, reduceJpeg, reducedSize, reducesLikeSharp, type Shrink, type Window } from '../../src/image/reduce.js';
import type { RawImage } from '../../src/image/types.js';
import { image } from '../helpers/paths.js';

const KERNELS = ['lanczos3', 'lanczos2', 'cubic', 'mitchell', 'linear'] as const;

async function photo(file: string, width: number, height: number): Promise<RawImage> {
  const data = await sharp(readFileSync(image(file))).resize(width, height, { fit: 'fill' }).raw().toBuffer();
  return { data, width, height, channels: 3 };
}

/** sharp's answer for raw pixels: resize (fill, or outside for a crop), then the window. */
async function sharpReduced(src: RawImage, to: { width: number; height: number }, fit: 'fill' | 'outside', kernel: string, window?: Window): Promise<Buffer> {
  let pipeline = sharp(src.data, { raw: { width: src.width, height: src.height, channels: 3 } }).resize(to.width, to.height, { fit, kernel: kernel as 'lanczos3' });
  if (window) pipeline = pipeline.extract(window);
  return pipeline.raw().toBuffer();
}

test('the addon reduces exactly as sharp does: photos, every kernel, odd sizes and ratios, one side unchanged', async () => {
  let compared = 0;
  for (const [file, w, h] of [['car.jpg', 640, 482], ['cat_small.jpg', 333, 517], ['car.jpg', 97, 41], ['cat_small.jpg', 3, 5]] as const) {
    const src = await photo(file, w, h);
    const targets = [[Math.round(w / 1.88), Math.round(h / 1.88)], [w - 1, h - 1], [Math.ceil(w / 3.9), Math.ceil(h / 3.9)], [w, Math.round(h / 1.5)], [Math.round(w / 2.7), h], [Math.ceil(w / 1.3), Math.ceil(h / 3.1)]];
    for (const [tw, th] of targets as Array<[number, number]>) {
      const shrink = { h: w / tw, v: h / th };
      if (!reducesLikeSharp(src, shrink, 'lanczos3')) continue;
      assert.deepEqual(reducedSize(src, shrink), { width: tw, height: th }, `${file} ${w}x${h} to ${tw}x${th}: libvips' size`);
      for (const kernel of KERNELS) {
        const ours = await reduce(src, shrink, kernel);
        assert.ok(ours, 'the addon is built and takes it');
        const theirs = await sharpReduced(src, { width: tw, height: th }, 'fill', kernel);
        assert.ok(Buffer.from(ours.data).equals(theirs), `${file} ${w}x${h} to ${tw}x${th}, ${kernel}: same bytes`);
        compared++;
      }
    }
  }
  assert.ok(compared >= 80, `compared ${compared}`);
});

test('a window of the reduce is the same bytes as sharp\'s extract after its resize', async () => {
  const src = await photo('car.jpg', 640, 482);
  let compared = 0;
  for (const side of [256, 300, 161, 479]) {
    const ratio = Math.min(src.width / side, src.height / side);
    const shrink: Shrink = { h: ratio, v: ratio };
    const full = reducedSize(src, shrink);
    const crop = Math.min(224, full.width);
    for (const window of [
      { left: Math.floor((full.width - crop) / 2), top: Math.floor((full.height - 150) / 2), width: crop, height: 150 },
      { left: 0, top: 0, width: full.width, height: 1 },
      { left: full.width - 7, top: full.height - 5, width: 7, height: 5 },
    ]) {
      for (const kernel of ['lanczos3', 'linear'] as const) {
        const ours = await reduce(src, shrink, kernel, window);
        assert.ok(ours, `${side}: the addon takes it`);
        const theirs = await sharpReduced(src, { width: side, height: side }, 'outside', kernel, window);
        assert.ok(Buffer.from(ours.data).equals(theirs), `shorter side ${side}, window ${JSON.stringify(window)}, ${kernel}: same bytes`);
        compared++;
      }
    }
  }
  assert.equal(compared, 24);
});

test('only reduces below libvips\' box-shrink threshold, with a kernel it computes, go to the addon', async () => {
  const frame = { width: 640, height: 480 };
  assert.equal(reducesLikeSharp(frame, { h: 640 / 416, v: 480 / 312 }, 'lanczos3'), true);
  assert.equal(reducesLikeSharp(frame, { h: 1, v: 480 / 300 }, 'lanczos3'), true, 'one side unchanged');
  assert.equal(reducesLikeSharp(frame, { h: 1, v: 1 }, 'lanczos3'), false, 'nothing to reduce');
  assert.equal(reducesLikeSharp(frame, { h: 640 / 160, v: 480 / 120 }, 'lanczos3'), false, '4x: libvips box-shrinks first');
  assert.equal(reducesLikeSharp(frame, { h: 640 / 700, v: 480 / 300 }, 'lanczos3'), false, 'one side grows');
  assert.equal(reducesLikeSharp(frame, { h: 640 / 416, v: 480 / 312 }, 'nearest'), false, 'nearest: libvips subsamples');
  // The addon declines what it cannot compute as libvips would, rather than guess.
  const src = await photo('car.jpg', 100, 100);
  assert.equal(await reduce(src, { h: 4, v: 4 }, 'lanczos3'), null, '4x');
  assert.equal(await reduce(src, { h: 2, v: 2 }, 'lanczos3', { left: 40, top: 0, width: 20, height: 10 }), null, 'a window outside the reduced image');
});

test('the addon refuses buffers that do not match their sizes', async () => {
  const addon = jpegAddon()!;
  const src = new Uint8Array(8 * 8 * 3);
  await assert.rejects(async () => addon.reduceResize!(src, 8, 8, new Uint8Array(4 * 4 * 3 - 1), 2, 2, 5, 0, 0, 4, 4), RangeError);
  await assert.rejects(async () => addon.reduceResize!(src, 8, 9, new Uint8Array(4 * 4 * 3), 2, 2, 5, 0, 0, 4, 4), RangeError);
  await assert.rejects(async () => addon.reduceResize!(src, 8, 8, new Uint8Array(4 * 4 * 3), 0.5, 2, 5, 0, 0, 4, 4), TypeError);
  await assert.rejects(async () => addon.reduceResize!(src, 8, 8, new Uint8Array(4 * 4 * 3), 2, 2, 9, 0, 0, 4, 4), TypeError);
});

test('model inputs that shrink a JPEG a little are decoded and reduced in one addon call, or reduced from an earlier decode', async () => {
  const addon = jpegAddon()!;
  const real = { reduceJpeg: addon.reduceJpeg!, reduceResize: addon.reduceResize! };
  const calls: string[] = [];
  addon.reduceJpeg = (...args) => (calls.push('reduceJpeg'), real.reduceJpeg(...args));
  addon.reduceResize = (...args) => (calls.push('reduceResize'), real.reduceResize(...args));
  const classifier = [{ mode: 'shorter-side-center-crop', shorterSide: 256, kernel: 'lanczos3' }, { width: 224, height: 224 }] as const;
  try {
    const bytes = readFileSync(image('test_face_processing.jpg'));
    const input = await openImage(bytes, { maxPixels: 40_000_000, jpegDecoder: 'libjpeg' });
    const fused = await prepareImage(input, ...classifier);
    assert.equal(input.analysisRgbIfDecoded(), undefined, 'no full-size decode kept');
    await prepareImage(input, { mode: 'letterbox', align: 'top-left', fill: 114, kernel: 'lanczos3' }, { width: 416, height: 416 });
    assert.deepEqual(calls, ['reduceJpeg', 'reduceJpeg']);
    await input.analysisRgb();
    const fromDecode = await prepareImage(input, ...classifier);
    assert.deepEqual(calls, ['reduceJpeg', 'reduceJpeg', 'reduceResize'], 'an earlier decode is reused');
    assert.ok(Buffer.from(fused.rgb).equals(Buffer.from(fromDecode.rgb)), 'the same pixels either way');
    const car = await openImage(readFileSync(image('car.jpg')), { maxPixels: 40_000_000, jpegDecoder: 'libjpeg' });
    await prepareImage(car, ...classifier);
    assert.equal(calls.length, 3, 'a photo libvips shrinks on load stays with sharp');
  } finally {
    Object.assign(addon, real);
  }
});

test('a JPEG libjpeg refuses is reduced from the decode that stands instead', async () => {
  const bytes = readFileSync(image('test_face_processing.jpg'));
  // Cut short: libjpeg warns (the addon refuses), sharp's decode of what is there stands.
  const truncated = bytes.subarray(0, Math.floor(bytes.length * 0.7));
  const input = await openImage(truncated, { maxPixels: 40_000_000, jpegDecoder: 'libjpeg' });
  assert.equal(await reduceJpeg(truncated, input, { h: 482 / 256, v: 482 / 256 }, 'lanczos3', { left: 58, top: 16, width: 224, height: 224 }), null);
  await assert.rejects(prepareImage(input, { mode: 'shorter-side-center-crop', shorterSide: 256, kernel: 'lanczos3' }, { width: 224, height: 224 }), (err: Error & { code?: string }) => err.code === 'UNDECODABLE_IMAGE');
});
