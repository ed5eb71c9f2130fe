import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { OpenCvEngine } from '../../src/engines/opencv/engine.js';
import { loadOpenCv, OPENCV_BUILDS, type CV } from '../../src/engines/opencv/load.js';
import { groupRectangles, planScaleSplit, scaleLevels, type Rect } from '../../src/engines/opencv/split.js';
import { image, MODELS_DIR } from '../helpers/paths.js';

/**
 * The scale split must give exactly detectMultiScale's answer: the JS groupRectangles against
 * OpenCV's own on real candidate sets, and split searches against the one-call result.
 */
const FACE = 'haarcascade_frontalface_alt.xml';
const CAT = 'haarcascade_frontalcatface_extended.xml';

let cv: CV;
const cascades = new Map<string, CV>();
const grays = new Map<string, CV>();

function rectsOf(v: CV): Rect[] {
  const out: Rect[] = [];
  for (let i = 0; i < v.size(); i++) {
    const r = v.get(i);
    out.push([r.x, r.y, r.width, r.height]);
  }
  return out;
}

function detect(cascade: string, photo: string, scaleFactor: number, minNeighbors: number, minSize: number, maxSize = 0): Rect[] {
  const v = new cv.RectVector();
  try {
    cascades.get(cascade).detectMultiScale(grays.get(photo), v, scaleFactor, minNeighbors, 0, new cv.Size(minSize, minSize), new cv.Size(maxSize, maxSize));
    return rectsOf(v);
  } finally {
    v.delete();
  }
}

function opencvGroup(rects: Rect[], threshold: number, eps: number): Rect[] {
  const v = new cv.RectVector();
  const w = new cv.IntVector();
  try {
    for (const [x, y, width, height] of rects) v.push_back(new cv.Rect(x, y, width, height));
    cv.groupRectangles(v, w, threshold, eps);
    return rectsOf(v);
  } finally {
    v.delete();
    w.delete();
  }
}

const PHOTOS = ['test_face_processing.jpg', 'cat_small.jpg', 'car.jpg'];

describe('scale-split detectMultiScale', () => {
  before(async () => {
    cv = await loadOpenCv();
    for (const name of [FACE, CAT]) {
      cv.FS_createDataFile('/', name, readFileSync(path.join(MODELS_DIR, name)), true, false, false);
      const c = new cv.CascadeClassifier();
      assert.ok(c.load(name));
      cascades.set(name, c);
    }
    for (const photo of PHOTOS) {
      const { data, info } = await sharp(image(photo)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const src = new cv.Mat(info.height, info.width, cv.CV_8UC3);
      src.data.set(data);
      const gray = new cv.Mat();
      cv.cvtColor(src, gray, cv.COLOR_RGB2GRAY);
      src.delete();
      grays.set(photo, gray);
    }
  });

  test('groupRectangles matches OpenCV on raw candidates from real photos', () => {
    let compared = 0;
    for (const [cascade, photo, sf] of [[FACE, 'test_face_processing.jpg', 1.1], [FACE, 'test_face_processing.jpg', 1.05], [CAT, 'cat_small.jpg', 1.05], [FACE, 'cat_small.jpg', 1.1]] as const) {
      const raw = detect(cascade, photo, sf, 0, 20);
      assert.ok(raw.length > 5, `${photo}: expected raw candidates, got ${raw.length}`);
      for (const threshold of [1, 2, 3, 5, 8]) {
        for (const eps of [0.2, 0.5]) {
          assert.deepEqual(groupRectangles(raw, threshold, eps), opencvGroup(raw, threshold, eps), `${photo} ${cascade} sf ${sf} threshold ${threshold} eps ${eps}`);
          compared++;
        }
      }
    }
    assert.equal(compared, 40);
  });

  test('groupRectangles matches OpenCV on synthetic clusters (ties in averaging, nested boxes)', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 30; round++) {
      const rects: Rect[] = [];
      for (let c = 0; c < 6; c++) {
        const [x, y, s] = [rand(400), rand(300), 20 + rand(120)];
        for (let k = rand(9); k >= 0; k--) rects.push([x + rand(7) - 3, y + rand(7) - 3, s + rand(5) - 2, s + rand(5) - 2]);
      }
      for (const threshold of [1, 2, 3]) assert.deepEqual(groupRectangles(rects, threshold), opencvGroup(rects, threshold, 0.2), `round ${round} threshold ${threshold}`);
    }
  });

  test('a split plan covers every scale exactly once and balances the work', () => {
    const levels = scaleLevels(2372, 1334, [20, 20], 1.1, 25);
    const plan = planScaleSplit(2372, 1334, [20, 20], 1.1, 25, 2);
    assert.equal(plan.length, 2);
    assert.equal(plan[0]!.minSize, 25);
    assert.equal(plan[1]!.minSize, plan[0]!.maxSize + 1);
    assert.equal(plan[1]!.maxSize, 0);
    const inFirst = levels.filter((l) => l.size <= plan[0]!.maxSize);
    assert.ok(inFirst.length > 0 && inFirst.length < levels.length);
    const share = inFirst.reduce((a, l) => a + l.cost, 0) / levels.reduce((a, l) => a + l.cost, 0);
    assert.ok(share > 0.3 && share < 0.75, `first part has ${share.toFixed(2)} of the estimated work`);
    assert.deepEqual(planScaleSplit(100, 100, [20, 20], 1.1, 90, 2), [{ minSize: 90, maxSize: 0 }], 'one scale cannot be split');
  });

  const searches: [string, string, number, number, number][] = [
    [FACE, 'test_face_processing.jpg', 1.1, 5, 25],
    [FACE, 'test_face_processing.jpg', 1.05, 3, 20],
    [CAT, 'cat_small.jpg', 1.1, 5, 25],
    [CAT, 'cat_small.jpg', 1.05, 3, 24],
    [FACE, 'car.jpg', 1.2, 1, 25],
  ];
  for (const [cascade, photo, sf, mn, ms] of searches) {
    test(`split search = one detectMultiScale call: ${photo}, ${cascade}, ${sf}/${mn}/${ms}`, () => {
      const whole = detect(cascade, photo, sf, mn, ms);
      const gray = grays.get(photo);
      const window: [number, number] = cascade === FACE ? [20, 20] : [24, 24];
      for (const parts of photo === 'test_face_processing.jpg' ? [2, 3] : [2]) {
        const plan = planScaleSplit(gray.cols, gray.rows, window, sf, ms, parts);
        assert.equal(plan.length, parts);
        const candidates = plan.flatMap((r) => detect(cascade, photo, sf, 0, r.minSize, r.maxSize));
        assert.deepEqual(groupRectangles(candidates, mn), whole, `${parts} parts`);
      }
      if (photo !== 'car.jpg') assert.ok(whole.length > 0, 'the search finds something to compare');
    });
  }
});

for (const build of OPENCV_BUILDS)
describe(`OpenCvEngine: a large detection split across idle workers (${build} build)`, () => {
  let engine: OpenCvEngine;
  before(() => {
    // Sharing alone: no cut to bound the heap (tests/engines/opencv-bands.test.ts covers those).
    engine = new OpenCvEngine({ workers: 2, maxQueue: 8, modelsDir: MODELS_DIR, splitMinPixels: 1, build, maxPyramidPixelsPerCall: Infinity });
  });
  after(() => engine.close());

  test('gives the same boxes as one worker, in the same order', async () => {
    const { data, info } = await sharp(image('test_face_processing.jpg')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const rgb = { data, width: info.width, height: info.height, channels: 3 as const };
    const options = { cascade: FACE, scaleFactor: 1.1, minNeighbors: 5, minSize: 25 };
    // The first call teaches the engine the cascade's window size; it runs on one worker.
    const single = await engine.detectTimed(rgb, options);
    assert.equal(single.parts, undefined);
    assert.equal(single.boxes.length, 17);
    const split = await engine.detectTimed(rgb, options);
    assert.equal(split.parts, 2);
    assert.deepEqual(split.boxes, single.boxes);
  });

  test('does not split when no worker is idle', async () => {
    const { data, info } = await sharp(image('cat_small.jpg')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const rgb = { data, width: info.width, height: info.height, channels: 3 as const };
    const options = { cascade: CAT, scaleFactor: 1.1, minNeighbors: 5, minSize: 25 };
    await engine.detectTimed(rgb, options); // learn the window
    const results = await Promise.all([engine.detectTimed(rgb, options), engine.detectTimed(rgb, options), engine.detectTimed(rgb, options)]);
    assert.equal(results[0]!.parts, 2, 'the first of three finds both workers idle');
    assert.equal(results[1]!.parts, undefined);
    assert.equal(results[2]!.parts, undefined);
    for (const r of results) assert.deepEqual(r.boxes, [[256, 504, 498, 746]]);
  });
});
