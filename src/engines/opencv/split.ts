/**
 * One detectMultiScale split across workers by scale: each part searches a range of window sizes
 * with minNeighbors = 0 (raw candidates), and the candidates, concatenated in scale order, are
 * grouped once. OpenCV's detectMultiScale does exactly that in one call (candidates scale by scale,
 * then groupRectangles(minNeighbors, 0.2)), so the answer is identical, box for box and in order;
 * tests/engines/opencv-split.test.ts checks it against the one-call result.
 */

/** [x, y, width, height], as OpenCV's Rect. */
export type Rect = [number, number, number, number];

/** The eps detectMultiScale groups with (cascadedetect.cpp GROUP_EPS). */
export const GROUP_EPS = 0.2;

/** One part of a split search: window sizes from minSize to maxSize inclusive (square, pixels). */
export interface ScaleRange {
  minSize: number;
  /** 0: up to the image size. */
  maxSize: number;
}

/** Round half to even, as cvRound (lrint / cvtsd2si) does in OpenCV's native and wasm builds. */
function cvRound(v: number): number {
  const r = Math.round(v);
  return (r - v === 0.5 && r % 2 !== 0 ? r - 1 : r) | 0; // | 0: no -0
}

/** One scale of the search: its window size, an estimate of its work, and the pixels of its scaled image. */
export interface ScaleLevel {
  size: number;
  cost: number;
  pixels: number;
}

/**
 * The scales detectMultiScale visits for this image and search, as window sizes, with each scale's
 * estimated cost (the positions it evaluates, plus resizing and integral images) and the pixels of
 * its scaled image. Mirrors CascadeClassifierImpl::detectMultiScaleNoGrouping and FeatureEvaluator's y step.
 */
export function scaleLevels(width: number, height: number, window: [number, number], scaleFactor: number, minSize: number): ScaleLevel[] {
  const levels: ScaleLevel[] = [];
  for (let factor = 1; ; factor *= scaleFactor) {
    const w = cvRound(window[0] * factor);
    const h = cvRound(window[1] * factor);
    if (w > width || h > height) break;
    if (w < minSize || h < minSize) continue;
    const sw = Math.round(width / factor);
    const sh = Math.round(height / factor);
    const step = factor > 2 ? 1 : 2;
    const positions = (Math.max(0, sw - window[0]) * Math.max(0, sh - window[1])) / (step * step);
    levels.push({ size: Math.max(w, h), cost: positions + 0.25 * sw * sh, pixels: sw * sh });
    if (levels.length > 100_000) break; // only guards the loop: scaleFactor is at least 1.01 and images are bounded
  }
  return levels;
}

/**
 * Pixels summed over every scaled image of the search. OpenCV's FeatureEvaluator lays all the
 * scales a call searches out at once (scaled image and integral images, about 12 bytes per pixel
 * measured in the wasm heap), so this bounds one detectMultiScale call's memory and, with the
 * positions, its work.
 */
export function pyramidPixels(width: number, height: number, window: [number, number], scaleFactor: number, minSize: number): number {
  return scaleLevels(width, height, window, scaleFactor, minSize).reduce((sum, l) => sum + l.pixels, 0);
}

/**
 * Splits the search into disjoint ranges of window sizes that together cover every scale: at least
 * `parts` of about equal estimated cost when there are enough scales (to share one detection among
 * idle workers), and none holding more than `maxPixels` pyramid pixels unless a single window size
 * does (to bound the wasm heap of each call). A window size always belongs to exactly one range.
 */
export function planScaleRanges(
  width: number,
  height: number,
  window: [number, number],
  scaleFactor: number,
  minSize: number,
  limits: { parts: number; maxPixels: number },
): ScaleRange[] {
  // Scales that share a window size stand or fall together: a range is a span of window sizes.
  const groups: ScaleLevel[] = [];
  for (const l of scaleLevels(width, height, window, scaleFactor, minSize)) {
    const last = groups.at(-1);
    if (last && last.size === l.size) {
      last.cost += l.cost;
      last.pixels += l.pixels;
    } else groups.push({ ...l });
  }
  if (groups.length < 2) return [{ minSize, maxSize: 0 }];
  const parts = Math.max(1, limits.parts);
  const total = groups.reduce((a, g) => a + g.cost, 0);
  const ranges: ScaleRange[] = [];
  let lo = minSize;
  let acc = 0;
  let rangePixels = 0;
  let part = 1;
  const cutAfter = (size: number) => {
    ranges.push({ minSize: lo, maxSize: size });
    lo = size + 1;
    rangePixels = 0;
  };
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!;
    if (rangePixels > 0 && rangePixels + group.pixels > limits.maxPixels) cutAfter(groups[i - 1]!.size);
    acc += group.cost;
    rangePixels += group.pixels;
    if (i < groups.length - 1 && part < parts && acc >= (total * part) / parts) {
      cutAfter(group.size);
      part++;
    }
  }
  ranges.push({ minSize: lo, maxSize: 0 });
  return ranges;
}

/**
 * planScaleRanges' ranges grouped into one list per part: the ranges one worker searches in one
 * task (the pixels cross to it once). The heap cuts never move the cost cuts (a range is cut for
 * its pixels without resetting the cost counted so far), so each range falls inside one part of
 * the plan made without them.
 */
export function planScaleTasks(
  width: number,
  height: number,
  window: [number, number],
  scaleFactor: number,
  minSize: number,
  limits: { parts: number; maxPixels: number },
): ScaleRange[][] {
  const ranges = planScaleRanges(width, height, window, scaleFactor, minSize, limits);
  if (limits.parts <= 1) return [ranges];
  const parts = planScaleRanges(width, height, window, scaleFactor, minSize, { parts: limits.parts, maxPixels: Infinity });
  const within = (r: ScaleRange, part: ScaleRange) => part.maxSize === 0 || (r.maxSize !== 0 && r.maxSize <= part.maxSize);
  const tasks: ScaleRange[][] = parts.map(() => []);
  for (const r of ranges) tasks[parts.findIndex((part) => within(r, part))]!.push(r);
  return tasks.filter((t) => t.length > 0);
}

/**
 * Splits the search into `parts` ranges of window sizes with about equal estimated cost. Ranges are
 * disjoint and together cover every scale; fewer ranges come back when there are too few scales.
 */
export function planScaleSplit(width: number, height: number, window: [number, number], scaleFactor: number, minSize: number, parts: number): ScaleRange[] {
  if (parts <= 1) return [{ minSize, maxSize: 0 }];
  return planScaleRanges(width, height, window, scaleFactor, minSize, { parts, maxPixels: Infinity });
}

function similar(a: Rect, b: Rect, eps: number): boolean {
  const delta = eps * (Math.min(a[2], b[2]) + Math.min(a[3], b[3])) * 0.5;
  return (
    Math.abs(a[0] - b[0]) <= delta &&
    Math.abs(a[1] - b[1]) <= delta &&
    Math.abs(a[0] + a[2] - b[0] - b[2]) <= delta &&
    Math.abs(a[1] + a[3] - b[1] - b[3]) <= delta
  );
}

/** cv::partition with SimilarRects: union-find by rank; classes numbered in order of first appearance. */
function partition(rects: readonly Rect[], eps: number): { labels: number[]; classes: number } {
  const n = rects.length;
  const parent = new Int32Array(n).fill(-1);
  const rank = new Int32Array(n);
  const root = (i: number) => {
    while (parent[i]! >= 0) i = parent[i]!;
    return i;
  };
  for (let i = 0; i < n; i++) {
    let r1 = root(i);
    for (let j = 0; j < n; j++) {
      if (i === j || !similar(rects[i]!, rects[j]!, eps)) continue;
      let r2 = root(j);
      if (r2 !== r1) {
        // union by rank, as cv::partition does
        if (rank[r1]! > rank[r2]!) parent[r2] = r1;
        else {
          parent[r1] = r2;
          if (rank[r1] === rank[r2]) rank[r2]!++;
          r1 = r2;
        }
        // path compression for both chains
        for (let k = j; parent[k]! >= 0; ) {
          const next = parent[k]!;
          parent[k] = r1;
          k = next;
        }
        for (let k = i; parent[k]! >= 0; ) {
          const next = parent[k]!;
          parent[k] = r1;
          k = next;
        }
        r2 = r1;
      }
    }
  }
  const labels: number[] = new Array(n);
  const classOf = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const r = root(i);
    let c = classOf.get(r);
    if (c === undefined) {
      c = classOf.size;
      classOf.set(r, c);
    }
    labels[i] = c;
  }
  return { labels, classes: classOf.size };
}

/**
 * cv::groupRectangles(rectList, groupThreshold, eps): clusters similar rectangles, keeps clusters
 * with more than groupThreshold members as their average, and drops a cluster lying inside a
 * stronger one. An exact port (float32 averaging, round-half-even), checked against OpenCV's.
 */
export function groupRectangles(rects: readonly Rect[], groupThreshold: number, eps = GROUP_EPS): Rect[] {
  if (groupThreshold <= 0 || rects.length === 0) return rects.map((r) => [...r] as Rect);
  const { labels, classes } = partition(rects, eps);
  const sums = Array.from({ length: classes }, () => [0, 0, 0, 0]);
  const weights = new Array<number>(classes).fill(0);
  labels.forEach((c, i) => {
    const r = rects[i]!;
    const s = sums[c]!;
    s[0] += r[0];
    s[1] += r[1];
    s[2] += r[2];
    s[3] += r[3];
    weights[c]!++;
  });
  const averaged: Rect[] = sums.map((s, c) => {
    const inv = Math.fround(1 / weights[c]!);
    return s.map((v) => cvRound(Math.fround(v * inv))) as Rect;
  });
  const out: Rect[] = [];
  for (let i = 0; i < classes; i++) {
    const r1 = averaged[i]!;
    const n1 = weights[i]!;
    if (n1 <= groupThreshold) continue;
    let inside = false;
    for (let j = 0; j < classes && !inside; j++) {
      const n2 = weights[j]!;
      if (j === i || n2 <= groupThreshold) continue;
      const r2 = averaged[j]!;
      const dx = cvRound(r2[2] * eps);
      const dy = cvRound(r2[3] * eps);
      inside =
        r1[0] >= r2[0] - dx &&
        r1[1] >= r2[1] - dy &&
        r1[0] + r1[2] <= r2[0] + r2[2] + dx &&
        r1[1] + r1[3] <= r2[1] + r2[3] + dy &&
        (n2 > Math.max(3, n1) || n1 < 3);
    }
    if (!inside) out.push(r1);
  }
  return out;
}
