/**
 * DB (differentiable binarization) post-processing, as PaddleOCR's DBPostProcess does it, in plain
 * typed-array code: threshold the text probability map, take each 8-connected region, its
 * minimum-area rectangle, keep it when the mean probability inside is high enough, grow it back by
 * the unclip distance (the network predicts shrunk regions), and map it to the original image.
 * Runs in the ONNX worker that ran the detector.
 */

export type Point = [number, number];
/** Four corners, clockwise from the top-left: [tl, tr, br, bl]. */
export type Quad = [Point, Point, Point, Point];

export interface DbOptions {
  threshold: number;
  boxThreshold: number;
  unclipRatio: number;
  minSize: number;
  /** Most regions looked at (PaddleOCR: 1000). */
  maxCandidates: number;
}

export interface TextBox {
  /** Corners in original-image pixels. */
  quad: Quad;
  /** Mean text probability inside the box before unclipping. */
  score: number;
}

export interface MapSize {
  width: number;
  height: number;
}

/** Pixel coordinates of every 8-connected region of `mask` (row-major), each as [x0, y0, x1, y1, ...]. */
export function regions(mask: Uint8Array, width: number, height: number, maxRegions: number): Int32Array[] {
  const seen = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  const found: Int32Array[] = [];
  for (let start = 0; start < mask.length && found.length < maxRegions; start++) {
    if (!mask[start] || seen[start]) continue;
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    const pixels: number[] = [];
    while (top > 0) {
      const i = stack[--top]!;
      const x = i % width;
      const y = (i - x) / width;
      pixels.push(x, y);
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width || (dx === 0 && dy === 0)) continue;
          const j = ny * width + nx;
          if (mask[j] && !seen[j]) {
            seen[j] = 1;
            stack[top++] = j;
          }
        }
      }
    }
    found.push(Int32Array.from(pixels));
  }
  return found;
}

const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Convex hull (Andrew's monotone chain), counter-clockwise, no repeated end point. */
export function convexHull(points: Point[]): Point[] {
  const p = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return p;
  const lower: Point[] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper: Point[] = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, q) <= 0) upper.pop();
    upper.push(q);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

export interface RotatedRect {
  cx: number;
  cy: number;
  /** Side lengths along the unit axis (ux, uy) and its normal. */
  w: number;
  h: number;
  ux: number;
  uy: number;
}

/** The minimum-area rectangle around a convex polygon (one side on a hull edge; rotating calipers by brute force: hulls are small). */
export function minAreaRect(hull: Point[]): RotatedRect {
  if (hull.length === 1) return { cx: hull[0]![0], cy: hull[0]![1], w: 0, h: 0, ux: 1, uy: 0 };
  let best: RotatedRect | undefined;
  let bestArea = Infinity;
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (len === 0) continue;
    const ux = (b[0] - a[0]) / len;
    const uy = (b[1] - a[1]) / len;
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const [x, y] of hull) {
      const u = x * ux + y * uy;
      const v = -x * uy + y * ux;
      if (u < minU) minU = u;
      if (u > maxU) maxU = u;
      if (v < minV) minV = v;
      if (v > maxV) maxV = v;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = { cx: cu * ux - cv * uy, cy: cu * uy + cv * ux, w: maxU - minU, h: maxV - minV, ux, uy };
    }
  }
  return best ?? { cx: hull[0]![0], cy: hull[0]![1], w: 0, h: 0, ux: 1, uy: 0 };
}

/** The rectangle's corners ordered as PaddleOCR's get_mini_boxes orders them: [tl, tr, br, bl]. */
export function rectCorners(r: RotatedRect): Quad {
  const hw = r.w / 2, hh = r.h / 2;
  const vx = -r.uy, vy = r.ux;
  const pts: Point[] = [
    [r.cx - r.ux * hw - vx * hh, r.cy - r.uy * hw - vy * hh],
    [r.cx + r.ux * hw - vx * hh, r.cy + r.uy * hw - vy * hh],
    [r.cx + r.ux * hw + vx * hh, r.cy + r.uy * hw + vy * hh],
    [r.cx - r.ux * hw + vx * hh, r.cy - r.uy * hw + vy * hh],
  ];
  pts.sort((a, b) => a[0] - b[0]);
  const [l1, l2, r1, r2] = pts as [Point, Point, Point, Point];
  const [tl, bl] = l1[1] <= l2[1] ? [l1, l2] : [l2, l1];
  const [tr, br] = r1[1] <= r2[1] ? [r1, r2] : [r2, r1];
  return [tl, tr, br, bl];
}

/** Whether (x, y) is inside the convex quad (either winding). */
function insideQuad(q: Quad, x: number, y: number): boolean {
  let sign = 0;
  for (let i = 0; i < 4; i++) {
    const c = cross(q[i]!, q[(i + 1) % 4]!, [x, y]);
    if (c === 0) continue;
    const s = c > 0 ? 1 : -1;
    if (sign === 0) sign = s;
    else if (s !== sign) return false;
  }
  return true;
}

/** Mean probability over the pixels inside the quad (PaddleOCR's box_score_fast). */
export function boxScore(prob: Float32Array, size: MapSize, q: Quad): number {
  const xs = q.map((p) => p[0]);
  const ys = q.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs)));
  const x1 = Math.min(size.width - 1, Math.ceil(Math.max(...xs)));
  const y0 = Math.max(0, Math.floor(Math.min(...ys)));
  const y1 = Math.min(size.height - 1, Math.ceil(Math.max(...ys)));
  let sum = 0, n = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (!insideQuad(q, x, y)) continue;
      sum += prob[y * size.width + x]!;
      n++;
    }
  }
  return n === 0 ? 0 : sum / n;
}

/**
 * Text boxes from a probability map at `map` size, in the coordinates of an image of `source`
 * size (the map is the source resized to the model input). Sorted top to bottom, then left to right.
 */
export function dbBoxes(prob: Float32Array, map: MapSize, source: MapSize, o: DbOptions): TextBox[] {
  const mask = new Uint8Array(prob.length);
  for (let i = 0; i < prob.length; i++) mask[i] = prob[i]! > o.threshold ? 1 : 0;
  const sx = source.width / map.width;
  const sy = source.height / map.height;
  const boxes: TextBox[] = [];
  for (const pixels of regions(mask, map.width, map.height, o.maxCandidates)) {
    // The outline of a region is enough for its hull: each row's leftmost and rightmost pixel.
    const rows = new Map<number, [number, number]>();
    for (let i = 0; i < pixels.length; i += 2) {
      const x = pixels[i]!, y = pixels[i + 1]!;
      const r = rows.get(y);
      if (!r) rows.set(y, [x, x]);
      else {
        if (x < r[0]) r[0] = x;
        if (x > r[1]) r[1] = x;
      }
    }
    const outline: Point[] = [];
    for (const [y, [a, b]] of rows) outline.push([a, y], [b, y]);
    const rect = minAreaRect(convexHull(outline));
    if (Math.min(rect.w, rect.h) < o.minSize) continue;
    const score = boxScore(prob, map, rectCorners(rect));
    if (score < o.boxThreshold) continue;
    // Unclipping a rectangle by d (pyclipper's round offset) and taking the min-area rectangle again adds d on every side.
    const d = (rect.w * rect.h * o.unclipRatio) / (2 * (rect.w + rect.h));
    const grown = { ...rect, w: rect.w + 2 * d, h: rect.h + 2 * d };
    if (Math.min(grown.w, grown.h) < o.minSize + 2) continue;
    const quad = rectCorners(grown).map(([x, y]) => [
      Math.min(Math.max(x * sx, 0), source.width),
      Math.min(Math.max(y * sy, 0), source.height),
    ]) as Quad;
    boxes.push({ quad, score });
  }
  // PaddleOCR's reading order: by top edge, boxes on one line (within 10 px) left to right.
  boxes.sort((a, b) => a.quad[0][1] - b.quad[0][1] || a.quad[0][0] - b.quad[0][0]);
  for (let i = 1; i < boxes.length; i++) {
    for (let j = i; j > 0; j--) {
      const a = boxes[j - 1]!.quad[0], b = boxes[j]!.quad[0];
      if (Math.abs(b[1] - a[1]) < 10 && b[0] < a[0]) [boxes[j - 1], boxes[j]] = [boxes[j]!, boxes[j - 1]!];
      else break;
    }
  }
  return boxes;
}
