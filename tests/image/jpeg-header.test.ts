import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { openImage } from '../../src/image/decode.js';
import { readJpegHeader } from '../../src/image/jpeg-header.js';
import { image, REPO_ROOT } from '../helpers/paths.js';

const PHOTOS = [image('car.jpg'), image('cat_small.jpg'), image('test_face_processing.jpg'), ...['astronaut', 'chelsea', 'coffee'].map((n) => path.join(REPO_ROOT, 'data', `${n}.jpg`))];

async function sharpHeader(bytes: Buffer) {
  const m = await sharp(bytes).metadata();
  return { width: m.width, height: m.height, orientation: m.orientation ?? 1, components: m.channels, icc: m.icc !== undefined };
}

test('size and orientation equal sharp.metadata() on the photos, progressive and baseline', async () => {
  for (const file of PHOTOS) {
    const bytes = readFileSync(file);
    assert.deepEqual(readJpegHeader(bytes), await sharpHeader(bytes), path.basename(file));
  }
});

test('every EXIF orientation, big- and little-endian, colour and gray, baseline and progressive', async () => {
  const small = await sharp(readFileSync(image('cat_small.jpg'))).resize(60, 40).toBuffer();
  for (let orientation = 1; orientation <= 8; orientation++) {
    for (const variant of [sharp(small).jpeg(), sharp(small).grayscale().jpeg({ progressive: true })]) {
      const bytes = await variant.withMetadata({ orientation }).toBuffer();
      assert.deepEqual(readJpegHeader(bytes), await sharpHeader(bytes), `orientation ${orientation}`);
      // The same EXIF written big-endian (Motorola order), as many cameras do.
      const swapped = toBigEndianExif(bytes);
      if (swapped) assert.deepEqual(readJpegHeader(swapped), await sharpHeader(swapped), `big-endian orientation ${orientation}`);
    }
  }
});

test('openImage reports the oriented size from the JPEG header', async () => {
  const bytes = await sharp(readFileSync(image('cat_small.jpg'))).resize(60, 40).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const input = await openImage(bytes, { maxPixels: 1e6 });
  assert.deepEqual([input.width, input.height], [40, 60]);
  const rgb = await input.rgb();
  assert.deepEqual([rgb.width, rgb.height], [40, 60]);
  await assert.rejects(openImage(bytes, { maxPixels: 2399 }), { code: 'IMAGE_TOO_LARGE' });
});

test('anything unusual gives null (sharp reads it instead), never a wrong size', async () => {
  const bytes = readFileSync(image('test_face_processing.jpg'));
  const full = await sharpHeader(bytes);
  for (let cut = 0; cut < 2048; cut += 7) {
    const header = readJpegHeader(bytes.subarray(0, cut));
    if (header) assert.deepEqual(header, full, `cut at ${cut}`);
  }
  const corrupt = Buffer.from(bytes);
  corrupt[2] = 0x00; // no marker where one must be
  assert.equal(readJpegHeader(corrupt), null);
  assert.equal(readJpegHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x02])), null, 'scan before any frame header');
  const zero = Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 8, 0, 0, 0, 16, 1, 1, 0x11, 0]);
  assert.equal(readJpegHeader(zero), null, 'height 0 (defined later by DNL)');
});

/** The JPEG with its EXIF block rewritten in big-endian order (only the IFD0 orientation entry kept), or null when it has none. */
function toBigEndianExif(jpeg: Buffer): Buffer | null {
  const at = jpeg.indexOf(Buffer.from('Exif\0\0'));
  if (at < 0) return null;
  const tiff = jpeg.subarray(at + 6);
  const le = tiff[0] === 0x49;
  const u16 = (o: number) => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number) => (le ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  const ifd = u32(4);
  let orientation = 1;
  for (let i = 0; i < u16(ifd); i++) if (u16(ifd + 2 + i * 12) === 0x0112) orientation = u16(ifd + 2 + i * 12 + 8);
  const be = Buffer.alloc(8 + 2 + 12 + 4);
  be.write('MM', 0, 'latin1');
  be.writeUInt16BE(42, 2);
  be.writeUInt32BE(8, 4);
  be.writeUInt16BE(1, 8);
  be.writeUInt16BE(0x0112, 10);
  be.writeUInt16BE(3, 12);
  be.writeUInt32BE(1, 14);
  be.writeUInt16BE(orientation, 18);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0, 0]), Buffer.from('Exif\0\0', 'latin1'), be]);
  app1.writeUInt16BE(app1.length - 2, 2);
  // Replace the original APP1 segment (marker 2 bytes before its length).
  const start = at - 4;
  const end = start + 2 + jpeg.readUInt16BE(start + 2);
  return Buffer.concat([jpeg.subarray(0, start), app1, jpeg.subarray(end)]);
}
