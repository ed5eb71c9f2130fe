import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { mock, test } from 'node:test';
import sharp from 'sharp';
import { openImage } from '../../src/image/decode.js';
import { decodeJpegRgb, jpegAddon } from '../../src/image/jpeg-decoder.js';
import { readJpegHeader } from '../../src/image/jpeg-header.js';
import { image, REPO_ROOT } from '../helpers/paths.js';

const PHOTOS = [image('car.jpg'), image('cat_small.jpg'), image('test_face_processing.jpg'), ...['astronaut', 'chelsea', 'coffee'].map((n) => path.join(REPO_ROOT, 'data', `${n}.jpg`))];
const LIMITS = { maxPixels: 40_000_000 };

/** What sharp decodes, as openImage's sharp path asks for it (pixels as stored, EXIF orientation applied). */
async function sharpRgb(bytes: Buffer, ignoreIcc = true): Promise<Buffer> {
  return sharp(bytes, { ignoreIcc }).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer();
}

/** JPEG variants of one photo: the encodings libjpeg must take (chroma layouts, progressive, gray, restart markers' absence aside). */
async function variants(): Promise<Array<[string, Buffer]>> {
  const photo = sharp(readFileSync(image('cat_small.jpg'))).resize(333, 251);
  return [
    ['4:2:0 baseline', await photo.clone().jpeg({ quality: 85 }).toBuffer()],
    ['4:4:4', await photo.clone().jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer()],
    ['progressive', await photo.clone().jpeg({ progressive: true }).toBuffer()],
    ['gray', await photo.clone().grayscale().jpeg().toBuffer()],
    ['gray progressive', await photo.clone().grayscale().jpeg({ progressive: true }).toBuffer()],
    ['odd size', await photo.clone().resize(17, 9).jpeg().toBuffer()],
  ];
}

test('the libjpeg addon loads here (npm ci builds it on this platform)', () => {
  assert.ok(jpegAddon(), 'native/jpeg/build/Release/cvserve_jpeg.node loads');
});

test('libjpeg gives exactly sharp\'s pixels: the photos (baseline and progressive) and every JPEG layout', async () => {
  const cases: Array<[string, Buffer]> = [...PHOTOS.map((f): [string, Buffer] => [path.basename(f), readFileSync(f)]), ...(await variants())];
  for (const [name, bytes] of cases) {
    const header = readJpegHeader(bytes)!;
    const ours = await decodeJpegRgb(bytes, header.width, header.height);
    assert.ok(ours, `${name}: decoded by libjpeg`);
    assert.equal(ours.channels, 3, name);
    assert.ok(Buffer.from(ours.data.buffer, ours.data.byteOffset, ours.data.byteLength).equals(await sharpRgb(bytes)), `${name}: same pixels`);
  }
});

test('libjpeg refuses what is not a clean JPEG of the header\'s size (null: sharp decides)', async () => {
  const bytes = readFileSync(image('test_face_processing.jpg'));
  assert.equal(await decodeJpegRgb(bytes.subarray(0, Math.floor(bytes.length / 2)), 640, 482), null, 'truncated');
  assert.equal(await decodeJpegRgb(bytes, 641, 482), null, 'size other than the frame\'s');
  assert.equal(await decodeJpegRgb(Buffer.from('not a jpeg at all'), 640, 482), null, 'garbage');
  const cmyk = await sharp(bytes).toColourspace('cmyk').jpeg().toBuffer();
  assert.equal(readJpegHeader(cmyk)?.components, 4, 'a CMYK file');
  assert.equal(await decodeJpegRgb(cmyk, 640, 482), null, 'CMYK');
});

test('openImage: libjpeg decodes plain JPEGs, sharp the rest, and the pixels and errors are the same either way', async (t) => {
  const toBuffer = mock.method(sharp.prototype, 'toBuffer');
  t.after(() => toBuffer.mock.restore());
  const cat = readFileSync(image('cat_small.jpg'));
  // test_face_processing.jpg carries an ICC profile.
  const face = readFileSync(image('test_face_processing.jpg'));
  const withIcc = await sharp(face).withIccProfile('p3').jpeg().toBuffer();
  const rotated = await sharp(face).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const cmyk = await sharp(face).toColourspace('cmyk').jpeg().toBuffer();
  toBuffer.mock.resetCalls();

  // [name, bytes, which decode, sharp calls with libjpeg on]
  const cases: Array<[string, Buffer, 'rgb' | 'analysisRgb', number]> = [
    ['plain', cat, 'rgb', 0],
    ['plain, as stored', cat, 'analysisRgb', 0],
    ['photo with a profile, as stored', face, 'analysisRgb', 0],
    ['photo with a profile, converted', face, 'rgb', 1],
    ['ICC profile, as stored', withIcc, 'analysisRgb', 0],
    ['ICC profile, converted', withIcc, 'rgb', 1],
    ['EXIF orientation 6', rotated, 'analysisRgb', 1],
    ['CMYK', cmyk, 'analysisRgb', 1],
  ];
  for (const [name, bytes, decode, sharpCalls] of cases) {
    toBuffer.mock.resetCalls();
    const ours = await (await openImage(bytes, LIMITS))[decode]();
    assert.equal(toBuffer.mock.callCount(), sharpCalls, `${name}: sharp decodes ${sharpCalls ? 'it' : 'nothing'}`);
    const theirs = await (await openImage(bytes, { ...LIMITS, jpegDecoder: 'sharp' }))[decode]();
    assert.deepEqual([ours.width, ours.height, ours.channels], [theirs.width, theirs.height, theirs.channels], name);
    assert.ok(Buffer.from(ours.data).equals(Buffer.from(theirs.data)), `${name}: same pixels`);
  }

  const truncated = face.subarray(0, Math.floor(face.length * 0.6));
  const errorOf = (p: Promise<unknown>) => p.then(() => null, (e: { code?: string }) => e.code);
  toBuffer.mock.resetCalls();
  const ours = await errorOf((await openImage(truncated, LIMITS)).analysisRgb());
  assert.equal(toBuffer.mock.callCount(), 1, 'truncated: sharp has the last word');
  assert.equal(ours, await errorOf((await openImage(truncated, { ...LIMITS, jpegDecoder: 'sharp' })).analysisRgb()), 'truncated: same error');
  assert.equal(ours, 'UNDECODABLE_IMAGE');
});
