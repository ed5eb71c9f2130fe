import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import sharp from 'sharp';
import { openImage } from '../../src/image/decode.js';
import { jpegAddon, type JpegDecoderChoice } from '../../src/image/jpeg-decoder.js';
import { prepareImage, type ResizeSpec, type Size } from '../../src/image/preprocess.js';
import { image } from '../helpers/paths.js';

const CLASSIFIER: [ResizeSpec, Size] = [{ mode: 'shorter-side-center-crop', shorterSide: 256, kernel: 'lanczos3' }, { width: 224, height: 224 }];
const DETECTOR: [ResizeSpec, Size] = [{ mode: 'letterbox', align: 'top-left', fill: 114, kernel: 'lanczos3' }, { width: 416, height: 416 }];
const STRETCH: [ResizeSpec, Size] = [{ mode: 'stretch', kernel: 'lanczos3' }, { width: 500, height: 300 }];

/** prepareImage with one decoder, and which of the input's decodes it asked for. */
async function prepared(bytes: Buffer, jpegDecoder: JpegDecoderChoice, [resize, size]: [ResizeSpec, Size]) {
  const input = await openImage(bytes, { maxPixels: 40_000_000, jpegDecoder });
  const asked: string[] = [];
  const { analysisRgb, analysisPipeline } = input;
  Object.assign(input, {
    analysisRgb: () => (asked.push('decode'), analysisRgb()),
    analysisPipeline: () => (asked.push('sharp pipeline'), analysisPipeline()),
  });
  // libjpeg's decode may also come inside the addon's reduce or enlargement (reduceJpeg, enlargeJpeg).
  const addon = jpegAddon()!;
  const real = { reduceJpeg: addon.reduceJpeg!, enlargeJpeg: addon.enlargeJpeg! };
  addon.reduceJpeg = (...args) => (asked.push('decode'), real.reduceJpeg(...args));
  addon.enlargeJpeg = (...args) => (asked.push('decode'), real.enlargeJpeg(...args));
  try {
    const out = await prepareImage(input, resize, size);
    return { out, asked };
  } finally {
    Object.assign(addon, real);
  }
}

test('model inputs: libjpeg\'s decode feeds the resize unless libvips shrinks on load, with exactly sharp\'s pixels', async () => {
  const face = readFileSync(image('test_face_processing.jpg'));
  const car = readFileSync(image('car.jpg'));
  const frame = await sharp(car).resize(320, 320, { fit: 'fill' }).jpeg({ quality: 80 }).toBuffer();
  const frame416 = await sharp(car).resize(416, 416, { fit: 'fill' }).jpeg({ quality: 80 }).toBuffer();
  const cases: Array<[string, Buffer, [ResizeSpec, Size], string]> = [
    ['classifier, 640x482 photo', face, CLASSIFIER, 'decode'],
    ['detector, a 320x320 frame enlarged', frame, DETECTOR, 'decode'],
    ['detector, a frame at the model size', frame416, DETECTOR, 'decode'],
    ['detector, a 640x482 photo reduced', face, DETECTOR, 'decode'],
    ['stretch', face, STRETCH, 'decode'],
    ['classifier, 2372x1334 photo (shrunk on load)', car, CLASSIFIER, 'sharp pipeline'],
    ['detector, 2372x1334 photo (shrunk on load)', car, DETECTOR, 'sharp pipeline'],
  ];
  for (const [name, bytes, spec, way] of cases) {
    const ours = await prepared(bytes, 'libjpeg', spec);
    const theirs = await prepared(bytes, 'sharp', spec);
    assert.deepEqual(ours.asked, [way], `${name}: starts from the ${way}`);
    assert.deepEqual(ours.out.transform, theirs.out.transform, name);
    assert.ok(Buffer.from(ours.out.rgb).equals(Buffer.from(theirs.out.rgb)), `${name}: same pixels`);
  }
});
