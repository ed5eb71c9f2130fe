import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import sharp from 'sharp';
import { encodeImage } from '../../src/image/encode.js';
import { jpegTurbo, turboJpegSync } from '../../src/image/jpeg-turbo.js';
import { reference } from '../helpers/paths.js';

/** Peak signal-to-noise ratio of a decoded JPEG against the pixels it was made from. */
async function psnr(jpeg: Buffer, raw: Uint8Array, channels: 1 | 3): Promise<number> {
  const decoded = await sharp(jpeg).toColourspace(channels === 1 ? 'b-w' : 'srgb').raw().toBuffer();
  assert.equal(decoded.length, raw.length, 'decoded size');
  let se = 0;
  for (let i = 0; i < raw.length; i++) se += (decoded[i]! - raw[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (se / raw.length));
}

async function edgeMap() {
  const { data, info } = await sharp(readFileSync(reference('canny_test_face_processing.png'))).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: 1 as const };
}

test('libjpeg-turbo loads here (linux x64/arm64 ship it in the npm package)', () => {
  assert.ok(jpegTurbo(), 'the @julusian/jpeg-turbo prebuilt binary loads');
});

test('a gray edge map encodes as a 1-channel baseline JPEG of quality 90, as faithful as sharp at q90', async () => {
  const edges = await edgeMap();
  const jpeg = await encodeImage(edges, 'jpeg');
  const meta = await sharp(jpeg).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels, meta.isProgressive], ['jpeg', 640, 482, 1, false]);
  const ours = await psnr(jpeg, edges.data, 1);
  const sharps = await psnr(await sharp(edges.data, { raw: edges }).jpeg({ quality: 90, optimiseCoding: false }).toBuffer(), edges.data, 1);
  assert.ok(ours >= sharps - 0.5, `PSNR ${ours.toFixed(2)} vs sharp ${sharps.toFixed(2)} dB`);
});

test('RGB encodes with 4:2:0 chroma; pixels handed over as a view of a larger buffer are read from their offset', async () => {
  const width = 64;
  const height = 48;
  const backing = new Uint8Array(16 + width * height * 3);
  const rgb = backing.subarray(16);
  for (let i = 0; i < width * height; i++) rgb.set([(i % width) * 4, Math.floor(i / width) * 5, 128], i * 3);
  backing.fill(255, 0, 16);
  const jpeg = await encodeImage({ data: rgb, width, height, channels: 3 }, 'jpeg');
  const meta = await sharp(jpeg).metadata();
  assert.deepEqual([meta.width, meta.height, meta.channels, meta.chromaSubsampling], [64, 48, 3, '4:2:0']);
  assert.ok((await psnr(jpeg, rgb, 3)) >= 35);
});

test('RGBA (alpha) still goes through sharp, and too large a side is still refused', async () => {
  const rgba = { data: new Uint8Array(8 * 8 * 4).fill(200), width: 8, height: 8, channels: 4 as const };
  const meta = await sharp(await encodeImage(rgba, 'jpeg')).metadata();
  assert.deepEqual([meta.format, meta.width, meta.channels], ['jpeg', 8, 3]);
  await assert.rejects(encodeImage({ data: new Uint8Array(0), width: 70_000, height: 1, channels: 1 }, 'jpeg'), { code: 'OUTPUT_TOO_LARGE' });
});

test('JPEG answers own exactly their bytes, and a reused output buffer never changes an earlier answer', async () => {
  const edges = await edgeMap();
  const inverted = { ...edges, data: edges.data.map((v) => 255 - v) };
  const first = await encodeImage(edges, 'jpeg');
  const copyOfFirst = Buffer.from(first);
  const [second, third] = await Promise.all([encodeImage(inverted, 'jpeg'), encodeImage(edges, 'jpeg')]);
  const inWorker = turboJpegSync(inverted, 90)!;
  for (const [name, jpeg] of [['first', first], ['second', second], ['third', third], ['sync', inWorker]] as const) {
    assert.equal(jpeg.buffer.byteLength, jpeg.byteLength, `${name}: no worst-case buffer kept alive behind it`);
  }
  assert.ok(first.equals(copyOfFirst), 'the first answer is unchanged after later encodes');
  assert.ok(third.equals(first), 'same pixels, same bytes');
  assert.ok(inWorker.equals(second), 'the blocking encoder gives the same bytes');
  assert.ok(!second.equals(first));
});
