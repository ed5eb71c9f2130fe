import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { brotliDecompressSync } from 'node:zlib';
import { loadOpenCv, OPENCV_BUILDS, vendorOpenCvDir, type CV, type OpenCvBuild } from '../../src/engines/opencv/load.js';
import type { Box } from '../../src/engines/opencv/protocol.js';
import { groupRectangles, planScaleSplit, type Rect } from '../../src/engines/opencv/split.js';
import { missingNames, usedOpenCvNames } from '../../scripts/opencv-js/exports.js';
import { edgeIoU, grayPixels } from '../helpers/images.js';
import { reference as referenceFile } from '../helpers/paths.js';
import { assertSameBoxes, CAT_CASCADE, FACE_CASCADE, modelsDir, reference, rgbOf } from '../resources/haar-reference.js';

/**
 * The two OpenCV builds the engine can load (our WebAssembly-SIMD build in vendor/opencv/, and
 * @techstark/opencv-js from npm) give the native references' answers, and the same answers as
 * each other: Canny edge maps, Haar boxes, and the scale-split detection.
 */
const PHOTOS = Object.keys(reference.images);
const DEFAULTS = { scaleFactor: 1.1, minNeighbors: 5, minSize: 25 };

interface Loaded {
  cv: CV;
  cascades: Map<string, CV>;
  grays: Map<string, CV>;
}

const builds = new Map<OpenCvBuild, Loaded>();

function rectsOf(v: CV): Rect[] {
  const out: Rect[] = [];
  for (let i = 0; i < v.size(); i++) {
    const r = v.get(i);
    out.push([r.x, r.y, r.width, r.height]);
  }
  return out;
}

function detect({ cv, cascades, grays }: Loaded, cascade: string, photo: string, scaleFactor: number, minNeighbors: number, minSize: number, maxSize = 0): Rect[] {
  const v = new cv.RectVector();
  try {
    cascades.get(cascade).detectMultiScale(grays.get(photo), v, scaleFactor, minNeighbors, 0, new cv.Size(minSize, minSize), new cv.Size(maxSize, maxSize));
    return rectsOf(v);
  } finally {
    v.delete();
  }
}

function canny({ cv, grays }: Loaded, photo: string): Uint8Array {
  const edges = new cv.Mat();
  try {
    cv.Canny(grays.get(photo), edges, 100, 200);
    return edges.data.slice();
  } finally {
    edges.delete();
  }
}

const toBox = ([x, y, w, h]: Rect): Box => [x, y, x + w, y + h];
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

before(async () => {
  for (const build of OPENCV_BUILDS) {
    // Warm-up on: the loader's own small run must leave nothing behind that changes the answers.
    const cv = await loadOpenCv(build);
    const cascades = new Map<string, CV>();
    for (const name of [FACE_CASCADE, CAT_CASCADE]) {
      cv.FS_createDataFile('/', name, readFileSync(path.join(modelsDir, name)), true, false, false);
      const c = new cv.CascadeClassifier();
      assert.ok(c.load(name), `${build}: ${name} loads`);
      cv.FS_unlink(`/${name}`);
      cascades.set(name, c);
    }
    const grays = new Map<string, CV>();
    for (const photo of PHOTOS) {
      const rgb = await rgbOf(photo);
      const src = new cv.Mat(rgb.height, rgb.width, cv.CV_8UC3);
      src.data.set(rgb.data);
      const gray = new cv.Mat();
      cv.cvtColor(src, gray, cv.COLOR_RGB2GRAY);
      src.delete();
      grays.set(photo, gray);
    }
    builds.set(build, { cv, cascades, grays });
  }
});

describe('OpenCV builds: what is loaded', () => {
  test('the SIMD build on disk is the one build-info.json records', () => {
    const dir = vendorOpenCvDir();
    const info = JSON.parse(readFileSync(path.join(dir, 'build-info.json'), 'utf8')) as { files: Record<string, { bytes: number; sha256: string }> };
    const wasm = brotliDecompressSync(readFileSync(path.join(dir, 'opencv-simd.wasm.br')));
    assert.equal(wasm.length, info.files['opencv-simd.wasm']!.bytes);
    assert.equal(sha256(wasm), info.files['opencv-simd.wasm']!.sha256);
    assert.equal(sha256(readFileSync(path.join(dir, 'opencv-simd.cjs'))), info.files['opencv-simd.cjs']!.sha256);
  });

  test('the builds are the ones named: SIMD build is OpenCV 4.10 with WASM SIMD, npm build is 4.12 without', () => {
    const simd = builds.get('simd')!.cv.getBuildInformation() as string;
    const npm = builds.get('npm')!.cv.getBuildInformation() as string;
    assert.match(simd, /General configuration for OpenCV 4\.10\.0/);
    assert.match(npm, /General configuration for OpenCV 4\.12\.0/);
    // The SIMD build was compiled with -msimd128 and OpenCV's intrinsics on.
    assert.match(simd, /-msimd128/);
    assert.doesNotMatch(npm, /-msimd128/);
  });

  for (const build of OPENCV_BUILDS) {
    test(`${build}: has every cv.<name> the engine, its tests and the kernel benchmarks use`, () => {
      const names = usedOpenCvNames();
      assert.ok(names.includes('Canny') && names.includes('CascadeClassifier'), `found ${names.join(', ')}`);
      assert.deepEqual(missingNames(builds.get(build)!.cv, names), []);
    });
  }
});

describe('OpenCV builds: Canny', () => {
  for (const photo of PHOTOS) {
    test(`${photo}: both builds give native OpenCV's edge map (edge IoU ≥ 0.99, same edge count) and the same bytes`, async () => {
      const ref = await grayPixels(referenceFile(`canny_${photo.replace(/\.jpg$/, '.png')}`));
      const maps = OPENCV_BUILDS.map((b) => canny(builds.get(b)!, photo));
      for (const [i, edges] of maps.entries()) {
        assert.equal(edges.length, ref.width * ref.height);
        const iou = edgeIoU(edges, ref.data);
        assert.ok(iou >= 0.99, `${OPENCV_BUILDS[i]}: edge IoU ${iou.toFixed(4)} < 0.99`);
        assert.equal(edges.reduce((n, v) => n + (v ? 1 : 0), 0), reference.images[photo]!.canny_edge_pixels, `${OPENCV_BUILDS[i]}: edge pixels`);
      }
      assert.equal(sha256(maps[0]!), sha256(maps[1]!), 'the two builds give the same edge map');
    });
  }
});

describe('OpenCV builds: Haar detection', () => {
  const cases = PHOTOS.flatMap((photo) => [
    { photo, cascade: FACE_CASCADE, expected: reference.images[photo]!.faces },
    { photo, cascade: CAT_CASCADE, expected: reference.images[photo]!.catfaces },
  ]);
  for (const { photo, cascade, expected } of cases) {
    test(`${cascade} on ${photo}: both builds find native OpenCV's ${expected.length} boxes, the same boxes in the same order`, () => {
      const found = OPENCV_BUILDS.map((b) => detect(builds.get(b)!, cascade, photo, DEFAULTS.scaleFactor, DEFAULTS.minNeighbors, DEFAULTS.minSize));
      for (const boxes of found) assertSameBoxes(boxes.map(toBox), expected, 0.9);
      assert.deepEqual(found[0], found[1]);
    });
  }

  test('raw candidates (minNeighbors 0) are the same in both builds', () => {
    for (const [cascade, photo] of [[FACE_CASCADE, 'test_face_processing.jpg'], [CAT_CASCADE, 'cat_small.jpg']] as const) {
      const [simd, npm] = OPENCV_BUILDS.map((b) => detect(builds.get(b)!, cascade, photo, 1.1, 0, 20));
      assert.ok(simd!.length > 5, `${photo}: ${simd!.length} candidates`);
      assert.deepEqual(simd, npm, `${photo} ${cascade}`);
    }
  });
});

describe('OpenCV builds: scale-split detection', () => {
  const searches: [string, string, number, number, number][] = [
    [FACE_CASCADE, 'test_face_processing.jpg', 1.1, 5, 25],
    [CAT_CASCADE, 'cat_small.jpg', 1.1, 3, 24],
  ];
  for (const [cascade, photo, sf, mn, ms] of searches) {
    test(`split search = one call, in each build and across builds: ${photo}, ${cascade}, ${sf}/${mn}/${ms}`, () => {
      const window: [number, number] = cascade === FACE_CASCADE ? [20, 20] : [24, 24];
      const wholes: Rect[][] = [];
      for (const build of OPENCV_BUILDS) {
        const loaded = builds.get(build)!;
        const whole = detect(loaded, cascade, photo, sf, mn, ms);
        const gray = loaded.grays.get(photo);
        for (const parts of photo === 'test_face_processing.jpg' ? [2, 3] : [2]) {
          const plan = planScaleSplit(gray.cols, gray.rows, window, sf, ms, parts);
          const candidates = plan.flatMap((r) => detect(loaded, cascade, photo, sf, 0, r.minSize, r.maxSize));
          assert.deepEqual(groupRectangles(candidates, mn), whole, `${build}: ${parts} parts`);
        }
        wholes.push(whole);
      }
      assert.deepEqual(wholes[0], wholes[1], 'both builds');
      assert.ok(wholes[0]!.length > 0, 'the search finds something to compare');
    });
  }

  test("the JS groupRectangles matches each build's cv.groupRectangles", () => {
    for (const build of OPENCV_BUILDS) {
      const loaded = builds.get(build)!;
      const { cv } = loaded;
      const raw = detect(loaded, FACE_CASCADE, 'test_face_processing.jpg', 1.1, 0, 20);
      for (const threshold of [1, 3, 5]) {
        const v = new cv.RectVector();
        const w = new cv.IntVector();
        try {
          for (const [x, y, width, height] of raw) v.push_back(new cv.Rect(x, y, width, height));
          cv.groupRectangles(v, w, threshold, 0.2);
          assert.deepEqual(groupRectangles(raw, threshold), rectsOf(v), `${build} threshold ${threshold}`);
        } finally {
          v.delete();
          w.delete();
        }
      }
    }
  });
});
