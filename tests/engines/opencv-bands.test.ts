import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OpenCvEngine } from '../../src/engines/opencv/engine.js';
import { planScaleRanges, planScaleSplit, planScaleTasks, pyramidPixels, scaleLevels } from '../../src/engines/opencv/split.js';
import { assertSameBoxes, CAT_CASCADE, FACE_CASCADE, modelsDir, reference, rgbOf } from '../resources/haar-reference.js';

const DEFAULTS = { scaleFactor: 1.1, minNeighbors: 5, minSize: 25 };

describe('a Haar search larger than one call may hold is split into bounded calls', () => {
  test('every range but one-size ranges stays within the pixel bound, and together they cover every scale once', () => {
    const window: [number, number] = [20, 20];
    for (const [w, h, sf, maxPixels] of [
      [2372, 1334, 1.02, 24_000_000],
      [640, 482, 1.1, 300_000],
      [6000, 6000, 1.1, 24_000_000],
      [1, 24_000, 1.1, 1000],
    ] as const) {
      const levels = scaleLevels(w, h, window, sf, 25);
      const ranges = planScaleRanges(w, h, window, sf, 25, { parts: 1, maxPixels });
      const owners = levels.map((l) => ranges.filter((r) => l.size >= r.minSize && (r.maxSize === 0 || l.size <= r.maxSize)).length);
      assert.ok(owners.every((n) => n === 1), `${w}x${h}@${sf}: each scale in exactly one range`);
      for (const r of ranges) {
        const inside = levels.filter((l) => l.size >= r.minSize && (r.maxSize === 0 || l.size <= r.maxSize));
        const pixels = inside.reduce((a, l) => a + l.pixels, 0);
        const oneSize = new Set(inside.map((l) => l.size)).size === 1;
        assert.ok(pixels <= maxPixels || oneSize, `${w}x${h}@${sf}: range ${JSON.stringify(r)} holds ${pixels} > ${maxPixels}`);
      }
      assert.equal(levels.reduce((a, l) => a + l.pixels, 0), pyramidPixels(w, h, window, sf, 25));
    }
  });

  test("one task per part: each holds the bounded ranges inside one part of the split, in order", () => {
    const window: [number, number] = [20, 20];
    for (const [w, h, sf, parts, maxPixels] of [
      [2372, 1334, 1.1, 2, 4_000_000],
      [2372, 1334, 1.1, 1, 4_000_000],
      [2372, 1334, 1.02, 3, 2_000_000],
      [640, 482, 1.1, 2, 150_000],
    ] as const) {
      const ranges = planScaleRanges(w, h, window, sf, 25, { parts, maxPixels });
      const split = planScaleSplit(w, h, window, sf, 25, parts);
      const tasks = planScaleTasks(w, h, window, sf, 25, { parts, maxPixels });
      const label = `${w}x${h}@${sf} in ${parts}`;
      assert.deepEqual(tasks.flat(), ranges, `${label}: every range once, in order`);
      assert.equal(tasks.length, split.length, `${label}: one task per part`);
      tasks.forEach((task, i) => {
        assert.equal(task[0]!.minSize, split[i]!.minSize, `${label}: task ${i} starts its part`);
        assert.equal(task.at(-1)!.maxSize, split[i]!.maxSize, `${label}: task ${i} ends its part`);
      });
    }
    assert.equal(planScaleTasks(2372, 1334, window, 1.1, 25, { parts: 2, maxPixels: 4_000_000 })[0]!.length, 2, "car.jpg: the first part's two ranges are one task");
  });

  test('car.jpg at scaleFactor 1.01 (the search that ran the worker out of memory) is 106 M pyramid pixels', () => {
    const pixels = pyramidPixels(2372, 1334, [20, 20], 1.01, 25);
    assert.ok(pixels > 100e6 && pixels < 110e6, String(pixels));
    assert.equal(pyramidPixels(1, 24_000, [20, 20], 1.1, 25), 0, 'a window wider than the image searches nothing');
  });

  describe('OpenCvEngine with a small per-call bound', () => {
    let whole: OpenCvEngine;
    let banded: OpenCvEngine;
    before(() => {
      whole = new OpenCvEngine({ workers: 1, maxQueue: 64, modelsDir, maxPyramidPixelsPerCall: Infinity });
      banded = new OpenCvEngine({ workers: 1, maxQueue: 64, modelsDir, maxPyramidPixelsPerCall: 150_000 });
    });
    after(async () => {
      await Promise.all([whole.close(), banded.close()]);
    });

    for (const [name, cascade, expected] of [
      ['test_face_processing.jpg', FACE_CASCADE, reference.images['test_face_processing.jpg'].faces],
      ['cat_small.jpg', CAT_CASCADE, reference.images['cat_small.jpg'].catfaces],
    ] as const) {
      test(`${cascade} on ${name}: the same boxes, in the same order, from several calls`, async () => {
        const rgb = await rgbOf(name);
        const window: [number, number] = cascade === FACE_CASCADE ? [20, 20] : [24, 24];
        const options = { cascade, ...DEFAULTS, window };
        const calls = planScaleRanges(rgb.width, rgb.height, window, DEFAULTS.scaleFactor, DEFAULTS.minSize, { parts: 1, maxPixels: 150_000 }).length;
        assert.ok(calls >= 3, `the search is split (${calls} calls)`);
        const before = banded.stats().completed;
        const one = await whole.detect(rgb, options);
        const timed = await banded.detectTimed(rgb, options);
        assert.equal(timed.calls, calls, 'one detectMultiScale call per range');
        assert.equal(banded.stats().completed - before, 1, 'one pool task: the pixels cross once');
        const split = timed.boxes;
        assert.deepEqual(split, one);
        assertSameBoxes(split, expected, 0.9);
      });
    }

    test('the calls are one task: one copy of the pixels waits, not one per call', async () => {
      const rgb = await rgbOf('test_face_processing.jpg');
      const pending = banded.detect(rgb, { cascade: FACE_CASCADE, ...DEFAULTS, window: [20, 20] });
      const stats = banded.stats();
      assert.equal(stats.running + stats.queued, 1, `in flight: ${stats.running} running, ${stats.queued} queued`);
      assert.equal((await pending).length, reference.images['test_face_processing.jpg'].faces.length);
    });
  });
});
