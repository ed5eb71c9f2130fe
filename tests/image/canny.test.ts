import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { loadOpenCv, type CV } from '../../src/engines/opencv/load.js';
import { OpenCvEngine } from '../../src/engines/opencv/engine.js';
import { decodeJpegRgbInto, jpegAddon } from '../../src/image/jpeg-decoder.js';
import { IMAGES_DIR, MODELS_DIR } from '../helpers/paths.js';

// The addon's Canny (native/jpeg/canny.c) against OpenCV.js's cvtColor + Canny: the same bytes for
// photos, thresholds (reversed, fractional, zero, beyond every gradient), channel counts and the
// smallest shapes, where the replicated border decides everything.

const addon = jpegAddon();
const PHOTOS = ['test_face_processing.jpg', 'car.jpg', 'cat_small.jpg'];
const THRESHOLDS: [number, number][] = [[100, 200], [50, 150], [200, 100], [0, 0], [10.7, 30.2], [300, 600], [0, 10_000], [1, 2]];

function opencvCanny(cv: CV, pixels: Uint8Array, width: number, height: number, channels: number, t1: number, t2: number): Uint8Array {
  const src = new cv.Mat(height, width, channels === 1 ? cv.CV_8UC1 : channels === 3 ? cv.CV_8UC3 : cv.CV_8UC4);
  const gray = new cv.Mat();
  const edges = new cv.Mat();
  try {
    src.data.set(pixels);
    if (channels === 1) src.copyTo(gray);
    else cv.cvtColor(src, gray, channels === 3 ? cv.COLOR_RGB2GRAY : cv.COLOR_RGBA2GRAY);
    cv.Canny(gray, edges, t1, t2);
    return new Uint8Array(edges.data as Uint8Array);
  } finally {
    src.delete();
    gray.delete();
    edges.delete();
  }
}

function addonCanny(pixels: Uint8Array, width: number, height: number, channels: number, t1: number, t2: number): Uint8Array {
  const out = new Uint8Array(width * height);
  assert.equal(addon!.cannySync!(pixels, width, height, channels, t1, t2, out), null);
  return out;
}

/** Pixels that differ, for a short message. */
function differing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe('the addon\'s Canny gives OpenCV\'s bytes', { skip: addon?.cannySync ? false : 'the addon is not built' }, () => {
  let cv: CV;
  before(async () => {
    cv = await loadOpenCv();
  });

  for (const photo of PHOTOS) {
    test(`${photo}: every threshold pair, RGB`, async () => {
      const { data, info } = await sharp(path.join(IMAGES_DIR, photo)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      for (const [t1, t2] of THRESHOLDS) {
        const mine = addonCanny(data, info.width, info.height, 3, t1, t2);
        const theirs = opencvCanny(cv, data, info.width, info.height, 3, t1, t2);
        assert.equal(differing(mine, theirs), 0, `${t1}/${t2}: pixels differ`);
      }
    });

    test(`${photo}: from the JPEG, as the worker decodes it`, async () => {
      const jpeg = readFileSync(path.join(IMAGES_DIR, photo));
      const { width, height } = await sharp(jpeg).metadata();
      const rgb = new Uint8Array(width! * height! * 3);
      assert.ok(decodeJpegRgbInto(jpeg, rgb, width!, height!));
      const out = new Uint8Array(width! * height!);
      assert.equal(addon!.cannyJpegSync!(jpeg, width!, height!, 100, 200, out), null);
      assert.equal(differing(out, opencvCanny(cv, rgb, width!, height!, 3, 100, 200)), 0, 'pixels differ');
      assert.ok(out.some((v) => v === 255), 'an edge map with edges');
    });
  }

  test('small and odd shapes, gray, RGB and RGBA, random and smooth pixels', () => {
    let seed = 7;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    let withEdges = 0;
    for (let k = 0; k < 300; k++) {
      const width = 1 + Math.floor(random() * (k < 100 ? 6 : 60));
      const height = 1 + Math.floor(random() * (k < 100 ? 6 : 60));
      const channels = [1, 3, 4][k % 3]!;
      const pixels = new Uint8Array(width * height * channels);
      const smooth = k % 2 === 0;
      for (let i = 0; i < pixels.length; i++) {
        const x = i % (width * channels);
        const y = Math.floor(i / (width * channels));
        pixels[i] = smooth ? Math.max(0, Math.min(255, Math.floor(128 + 100 * Math.sin(x / 7 + y / 5) + random() * 20))) : Math.floor(random() * 256);
      }
      const [t1, t2] = [Math.floor(random() * 300), Math.floor(random() * 600)];
      const mine = addonCanny(pixels, width, height, channels, t1, t2);
      assert.equal(differing(mine, opencvCanny(cv, pixels, width, height, channels, t1, t2)), 0, `${width}x${height}x${channels} ${t1}/${t2}: pixels differ`);
      if (mine.includes(255)) withEdges++;
    }
    assert.ok(withEdges > 100, `only ${withEdges} maps with edges`);
  });

  test('a JPEG libjpeg refuses, and arguments that do not fit, are refused without a crash', () => {
    const out = new Uint8Array(16);
    assert.notEqual(addon!.cannyJpegSync!(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), 4, 4, 100, 200, out), null);
    assert.throws(() => addon!.cannySync!(new Uint8Array(15), 4, 4, 1, 100, 200, out), RangeError);
    assert.throws(() => addon!.cannySync!(new Uint8Array(16), 4, 4, 2, 100, 200, out), RangeError);
    assert.throws(() => addon!.cannySync!(new Uint8Array(16), 4, 4, 1, 100, 200, new Uint8Array(15)), RangeError);
    assert.throws(() => addon!.cannySync!(new Uint8Array(16), 4, 4, 1, Number.NaN, 200, out), RangeError);
  });
});

describe('the OpenCV engine computes edge maps with the addon or with OpenCV.js: the same bytes', { skip: addon?.cannySync ? false : 'the addon is not built' }, () => {
  const engines = { native: new OpenCvEngine({ workers: 1, maxQueue: 8, modelsDir: MODELS_DIR, canny: 'native' }), opencv: new OpenCvEngine({ workers: 1, maxQueue: 8, modelsDir: MODELS_DIR, canny: 'opencv' }) };
  after(async () => {
    await Promise.all(Object.values(engines).map((e) => e.close()));
  });

  for (const photo of ['test_face_processing.jpg', 'cat_small.jpg']) {
    test(`${photo}: canny() and cannyJpeg()`, async () => {
      const jpeg = readFileSync(path.join(IMAGES_DIR, photo));
      const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const image = { data, width: info.width, height: info.height, channels: 3 as const };
      const [a, b] = await Promise.all([engines.native.canny(image, 100, 200), engines.opencv.canny(image, 100, 200)]);
      assert.equal(differing(a.data, b.data), 0, 'canny(): pixels differ');
      const [ja, jb] = await Promise.all([engines.native.cannyJpeg(jpeg, info, 100, 200, 90), engines.opencv.cannyJpeg(jpeg, info, 100, 200, 90)]);
      assert.ok(ja && jb, 'both decoded');
      assert.equal(Buffer.compare(ja, jb), 0, 'cannyJpeg(): the JPEGs differ');
    });
  }
});
