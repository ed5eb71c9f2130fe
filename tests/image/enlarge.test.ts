import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import sharp from 'sharp';
import { openImage } from '../../src/image/decode.js';
import { enlarge, enlargeJpeg, enlargesLikeSharp } from '../../src/image/enlarge.js';
import { jpegAddon } from '../../src/image/jpeg-decoder.js';
import { prepareImage, type Kernel } from '../../src/image/preprocess.js';
import { image } from '../helpers/paths.js';

/** sharp's enlargement of raw RGB pixels: what the addon must reproduce. */
async function sharpEnlarged(rgb: Buffer, width: number, height: number, to: { width: number; height: number }, kernel: Kernel): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).resize(to.width, to.height, { fit: 'fill', kernel }).raw().toBuffer();
}

test('the addon enlarges exactly as sharp does: photos, every bicubic kernel, odd sizes and ratios', async () => {
  const car = readFileSync(image('car.jpg'));
  const cat = readFileSync(image('cat_small.jpg'));
  const sources: Array<[string, Buffer, number, number]> = [];
  for (const [photo, name] of [[car, 'car'], [cat, 'cat']] as const) {
    for (const [w, h] of [[320, 320], [300, 200], [33, 17], [7, 5], [1, 1], [1, 9], [2, 3]]) {
      sources.push([`${name} ${w}x${h}`, await sharp(photo).resize(w, h, { fit: 'fill' }).raw().toBuffer(), w, h]);
    }
  }
  let compared = 0;
  for (const [name, rgb, w, h] of sources) {
    const targets = [[416, 416], [w + 1, h + 1], [w * 3, h * 2], [Math.round(w * 1.3) + 1, Math.round(h * 1.3) + 1], [w * 7 + 3, h * 5 + 1]];
    for (const [tw, th] of targets as Array<[number, number]>) {
      const to = { width: tw, height: th };
      assert.ok(enlargesLikeSharp({ width: w, height: h }, to, 'lanczos3'), `${name} to ${tw}x${th} is an enlargement`);
      const ours = await enlarge({ data: rgb, width: w, height: h, channels: 3 }, to);
      assert.ok(ours, 'the addon is built');
      for (const kernel of ['lanczos3', 'cubic', 'mitchell', 'lanczos2'] as const) {
        const theirs = await sharpEnlarged(rgb, w, h, to, kernel);
        assert.ok(Buffer.from(ours.data).equals(theirs), `${name} to ${tw}x${th}, ${kernel}: same bytes`);
        compared++;
      }
    }
  }
  assert.equal(compared, sources.length * 5 * 4);
});

test('the addon\'s vector loops (AVX-512 where the CPU has it) give the portable loops\' bytes', async () => {
  const addon = jpegAddon()!;
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  let compared = 0;
  for (const [w, h] of [[320, 320], [1, 1], [2, 3], [5, 1], [17, 9], [64, 21], [300, 200]]) {
    // Noise and hard edges: every tap's weight and every clipped value show.
    const src = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i % 7 === 0 ? (i & 8 ? 255 : 0) : random()));
    for (const [tw, th] of [[416, 416], [w + 1, h + 1], [w * 7 + 3, h * 5 + 1], [Math.round(w * 1.3) + 5, h + 2]]) {
      const vector = new Uint8Array(tw * th * 3);
      const portable = new Uint8Array(tw * th * 3);
      await addon.enlargeBicubic!(src, w, h, vector, tw, th);
      await addon.enlargeBicubic!(src, w, h, portable, tw, th, false);
      assert.ok(Buffer.from(vector).equals(Buffer.from(portable)), `${w}x${h} to ${tw}x${th}: same bytes`);
      compared++;
    }
  }
  assert.equal(compared, 28);
});

test('only enlargements with a bicubic kernel go to the addon', () => {
  const frame = { width: 320, height: 320 };
  assert.equal(enlargesLikeSharp(frame, { width: 416, height: 416 }, 'lanczos3'), true);
  assert.equal(enlargesLikeSharp(frame, { width: 416, height: 416 }, 'nearest'), false, 'nearest: libvips zooms or samples');
  assert.equal(enlargesLikeSharp(frame, { width: 416, height: 416 }, 'linear'), false, 'linear: a bilinear interpolator');
  assert.equal(enlargesLikeSharp(frame, { width: 416, height: 320 }, 'lanczos3'), false, 'one side unchanged');
  assert.equal(enlargesLikeSharp(frame, { width: 416, height: 300 }, 'lanczos3'), false, 'one side shrinks');
  assert.equal(enlargesLikeSharp(frame, frame, 'lanczos3'), false, 'same size');
});

test('the addon refuses buffers that do not match their sizes, and shrinking', async () => {
  const addon = jpegAddon()!;
  const src = new Uint8Array(4 * 4 * 3);
  await assert.rejects(async () => addon.enlargeBicubic!(src, 4, 4, new Uint8Array(8 * 8 * 3 - 1), 8, 8), RangeError);
  await assert.rejects(async () => addon.enlargeBicubic!(src, 4, 5, new Uint8Array(8 * 8 * 3), 8, 8), RangeError);
  await assert.rejects(async () => addon.enlargeBicubic!(src, 4, 4, new Uint8Array(2 * 8 * 3), 2, 8), RangeError);
  await assert.rejects(async () => addon.enlargeBicubic!(src, 4, 4, new Uint8Array(0), 0, 8), TypeError);
});

test('a Frigate frame is enlarged to the detector input by the addon, with sharp\'s pixels', async () => {
  const frame = await sharp(readFileSync(image('car.jpg'))).resize(320, 320, { fit: 'fill' }).jpeg({ quality: 75 }).toBuffer();
  const addon = jpegAddon()!;
  const original = addon.enlargeJpeg!;
  let calls = 0;
  addon.enlargeJpeg = (...args) => (calls++, original(...args));
  try {
    const spec = { mode: 'letterbox', align: 'top-left', fill: 114, kernel: 'lanczos3' } as const;
    const size = { width: 416, height: 416 };
    const ours = await prepareImage(await openImage(frame, { maxPixels: 1e7 }), spec, size);
    assert.equal(calls, 1, 'the addon enlarged it');
    const theirs = await prepareImage(await openImage(frame, { maxPixels: 1e7, jpegDecoder: 'sharp' }), spec, size);
    assert.equal(calls, 1, 'sharp enlarged the other');
    assert.ok(Buffer.from(ours.rgb).equals(Buffer.from(theirs.rgb)), 'same model input');
  } finally {
    addon.enlargeJpeg = original;
  }
});

test('a JPEG frame is decoded and enlarged in one addon call, to the bytes of a decode then an enlargement', async () => {
  const addon = jpegAddon()!;
  const real = { enlargeJpeg: addon.enlargeJpeg!, enlargeBicubic: addon.enlargeBicubic! };
  const calls: string[] = [];
  addon.enlargeJpeg = (...args) => (calls.push('enlargeJpeg'), real.enlargeJpeg(...args));
  addon.enlargeBicubic = (...args) => (calls.push('enlargeBicubic'), real.enlargeBicubic(...args));
  const detector = [{ mode: 'letterbox', align: 'top-left', fill: 114, kernel: 'lanczos3' }, { width: 416, height: 416 }] as const;
  try {
    for (const [w, h] of [[320, 320], [300, 200], [33, 17]]) {
      const bytes = await sharp(readFileSync(image('car.jpg'))).resize(w, h, { fit: 'fill' }).jpeg({ quality: 80 }).toBuffer();
      const input = await openImage(bytes, { maxPixels: 40_000_000, jpegDecoder: 'libjpeg' });
      const fused = await prepareImage(input, ...detector);
      assert.equal(input.analysisRgbIfDecoded(), undefined, `${w}x${h}: no decode kept`);
      await input.analysisRgb();
      const fromDecode = await prepareImage(input, ...detector);
      assert.ok(Buffer.from(fused.rgb).equals(Buffer.from(fromDecode.rgb)), `${w}x${h}: the same pixels either way`);
    }
    assert.deepEqual(calls, ['enlargeJpeg', 'enlargeBicubic', 'enlargeJpeg', 'enlargeBicubic', 'enlargeJpeg', 'enlargeBicubic']);
  } finally {
    Object.assign(addon, real);
  }
  const frame = await sharp(readFileSync(image('car.jpg'))).resize(320, 320, { fit: 'fill' }).jpeg({ quality: 80 }).toBuffer();
  assert.equal(await enlargeJpeg(frame.subarray(0, frame.length >> 1), { width: 320, height: 320 }, { width: 416, height: 416 }), null, 'a truncated JPEG');
});
