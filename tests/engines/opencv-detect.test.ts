import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { OpenCvEngine } from '../../src/engines/opencv/engine.js';
import { OPENCV_BUILDS } from '../../src/engines/opencv/load.js';
import { AppError } from '../../src/errors.js';
import { openImage } from '../../src/image/decode.js';
import type { RawImage } from '../../src/image/types.js';
import { image } from '../helpers/paths.js';
import { assertSameBoxes, CAT_CASCADE, FACE_CASCADE, modelsDir, reference, rgbOf } from '../resources/haar-reference.js';

const DEFAULTS = { scaleFactor: 1.1, minNeighbors: 5, minSize: 25 };

/** OpenCV's fixed-point RGB2GRAY (the same weights and rounding as cv::cvtColor), done in JS. */
function grayOf(rgb: RawImage): RawImage {
  const n = rgb.width * rgb.height;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = rgb.data[i * 3], g = rgb.data[i * 3 + 1], b = rgb.data[i * 3 + 2];
    data[i] = (r * 4899 + g * 9617 + b * 1868 + 8192) >> 14;
  }
  return { data, width: rgb.width, height: rgb.height, channels: 1 };
}

function rgbaOf(rgb: RawImage): RawImage {
  const n = rgb.width * rgb.height;
  const data = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    data.set(rgb.data.subarray(i * 3, i * 3 + 3), i * 4);
    data[i * 4 + 3] = 255;
  }
  return { data, width: rgb.width, height: rgb.height, channels: 4 };
}

// Every parity check runs against both OpenCV.js builds (CVSERVE_OPENCV_BUILD): cvserve's SIMD build and npm's.
for (const build of OPENCV_BUILDS)
describe(`OpenCvEngine.detect (Haar cascades in the wasm worker, ${build} build)`, () => {
  let engine: OpenCvEngine;
  before(() => {
    engine = new OpenCvEngine({ workers: 1, maxQueue: 8, modelsDir, build });
  });
  after(() => engine.close());

  test(`the worker runs the ${build} build (it reports the module it loaded)`, async () => {
    assert.deepEqual(await engine.info(), build === 'simd' ? { build: 'simd', version: '4.10.0', simd: true } : { build: 'npm', version: '4.12.0', simd: false });
  });

  const cases = Object.entries(reference.images).flatMap(([name, ref]) => [
    { name, cascade: FACE_CASCADE, expected: ref.faces },
    { name, cascade: CAT_CASCADE, expected: ref.catfaces },
  ]);
  for (const { name, cascade, expected } of cases) {
    test(`${cascade} on ${name}: the ${expected.length} boxes native OpenCV 4.6 finds`, async () => {
      const rgb = await rgbOf(name);
      const boxes = await engine.detect(rgb, { cascade, ...DEFAULTS });
      assertSameBoxes(boxes, expected, 0.9);
    });
  }

  test('the reference holds what the issue promises (17 faces, 1 cat face, nothing on the car)', () => {
    assert.equal(reference.images['test_face_processing.jpg'].faces.length, 17);
    assert.equal(reference.images['cat_small.jpg'].catfaces.length, 1);
    assert.equal(reference.images['car.jpg'].faces.length + reference.images['car.jpg'].catfaces.length, 0);
  });

  test('gray (1 channel) and RGBA (4 channels) inputs give exactly the RGB result', async () => {
    const rgb = await rgbOf('test_face_processing.jpg');
    const fromRgb = await engine.detect(rgb, { cascade: FACE_CASCADE, ...DEFAULTS });
    assert.deepEqual(await engine.detect(grayOf(rgb), { cascade: FACE_CASCADE, ...DEFAULTS }), fromRgb);
    assert.deepEqual(await engine.detect(rgbaOf(rgb), { cascade: FACE_CASCADE, ...DEFAULTS }), fromRgb);
  });

  test('the caller keeps its pixels: the image is copied to the worker, not transferred', async () => {
    const rgb = await rgbOf('test_face_processing.jpg');
    const before = rgb.data.byteLength;
    await engine.detect(rgb, { cascade: FACE_CASCADE, ...DEFAULTS });
    assert.equal(rgb.data.byteLength, before);
  });

  test('parameters reach detectMultiScale: minSize above every face finds none, minNeighbors 0 finds more', async () => {
    const rgb = await rgbOf('test_face_processing.jpg');
    assert.deepEqual(await engine.detect(rgb, { cascade: FACE_CASCADE, ...DEFAULTS, minSize: 60 }), []);
    const loose = await engine.detect(rgb, { cascade: FACE_CASCADE, ...DEFAULTS, minNeighbors: 0 });
    assert.ok(loose.length > 17, `minNeighbors 0 gave only ${loose.length} boxes`);
  });

  test('a missing cascade fails that task only; the worker keeps serving', async () => {
    const tiny: RawImage = { data: new Uint8Array(32 * 32), width: 32, height: 32, channels: 1 };
    await assert.rejects(engine.detect(tiny, { cascade: 'haarcascade_does_not_exist.xml', ...DEFAULTS }), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'INTERNAL');
      assert.match(err.detail ?? '', /haarcascade_does_not_exist\.xml/);
      return true;
    });
    await assert.rejects(engine.detect(tiny, { cascade: '../models/haarcascade_frontalface_alt.xml', ...DEFAULTS }), /invalid cascade file name/);
    assert.deepEqual(await engine.detect(tiny, { cascade: FACE_CASCADE, ...DEFAULTS }), []);
  });

  test('canny still works next to detect', async () => {
    const rgb = await rgbOf('car.jpg');
    const edges = await engine.canny(rgb, 100, 200);
    assert.equal(edges.width, rgb.width);
    assert.equal(edges.height, rgb.height);
    assert.equal(edges.channels, 1);
    let edgePixels = 0;
    for (const v of edges.data) if (v) edgePixels++;
    assert.equal(edgePixels, reference.images['car.jpg'].canny_edge_pixels, 'native OpenCV 4.6 marks exactly as many edge pixels');
  });

  test('canny with handOver moves a decode\'s pixels to the worker instead of copying them', async () => {
    const input = await openImage(readFileSync(image('cat_small.jpg')), { maxPixels: 40_000_000 });
    const rgb = await input.takeAnalysisRgb();
    const edges = await engine.canny(rgb, 100, 200, undefined, true);
    assert.equal(rgb.data.byteLength, 0, 'moved: detached here');
    let edgePixels = 0;
    for (const v of edges.data) if (v) edgePixels++;
    assert.equal(edgePixels, reference.images['cat_small.jpg'].canny_edge_pixels, 'native OpenCV\'s edge count');
    const again = await input.analysisRgb();
    assert.equal(again.data.byteLength, 1000 * 1334 * 3, 'the input decodes again after handing its pixels over');
  });
});
