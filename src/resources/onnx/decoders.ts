import type { Outputs, RowFilter, TensorMsg } from '../../engines/onnx/protocol.js';
import { toOriginal, type InputTransform, type Size } from '../../image/preprocess.js';
import type { DetectDecoder } from '../../models/manifest.js';

/** Output decoders, one per manifest decoder family. Pure functions over typed arrays. */

export interface Ranked {
  index: number;
  probability: number;
}

/**
 * The k best classes of one row of scores; softmax first when the row holds logits. Each
 * probability is computed where it is needed instead of into a row of its own (the same float32
 * values: exp rounded to float32, then divided by the sum of the unrounded exps), so a call
 * allocates only its k answers.
 */
export function topK(scores: Float32Array, k: number, activation: 'softmax' | 'none'): Ranked[] {
  const n = scores.length;
  const softmax = activation === 'softmax';
  let max = -Infinity;
  let sum = 0;
  if (softmax) {
    for (let i = 0; i < n; i++) if (scores[i]! > max) max = scores[i]!;
    for (let i = 0; i < n; i++) sum += Math.exp(scores[i]! - max);
  }
  // Partial selection: k is small (≤ 20), the row is ~1000 long.
  const best: Ranked[] = [];
  for (let i = 0; i < n; i++) {
    const p = softmax ? Math.fround(Math.fround(Math.exp(scores[i]! - max)) / sum) : scores[i]!;
    if (best.length === k && p <= best[k - 1]!.probability) continue;
    let at = best.length;
    while (at > 0 && best[at - 1]!.probability < p) at--;
    best.splice(at, 0, { index: i, probability: p });
    if (best.length > k) best.pop();
  }
  return best;
}

export interface Detection {
  /** [x1, y1, x2, y2] in original-image pixels, clipped to the image. */
  box: [number, number, number, number];
  classId: number;
  score: number;
}

export interface DetectOptions {
  threshold: number;
  /** Class ids to keep; undefined keeps all. */
  classes?: ReadonlySet<number>;
  /** Most detections decodeDetections returns (NMS stops there); undefined: no limit. */
  maxDetections?: number;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** A model-input box to an original-image box, clipped to the image. */
function mapBox(t: InputTransform, x1: number, y1: number, x2: number, y2: number): [number, number, number, number] {
  const [ox1, oy1] = toOriginal(t, x1, y1);
  const [ox2, oy2] = toOriginal(t, x2, y2);
  const clipX = (v: number) => Math.min(Math.max(v, 0), t.source.width);
  const clipY = (v: number) => Math.min(Math.max(v, 0), t.source.height);
  return [clipX(ox1), clipY(oy1), clipX(ox2), clipY(oy2)];
}

/** The highest of `count` class scores at d[from], d[from + step], …: its class index and raw value. */
function bestClass(d: Float32Array, from: number, count: number, step = 1): { classId: number; value: number } {
  let classId = 0;
  let value = -Infinity;
  for (let k = 0, o = from; k < count; k++, o += step) {
    if (d[o]! > value) {
      value = d[o]!;
      classId = k;
    }
  }
  return { classId, value };
}

/**
 * A YOLOX / YOLOv5 row at d[o]: cx, cy, w, h, objectness, class scores. Its score is objectness ×
 * the best class score; undefined below the threshold or outside the class filter.
 */
function objectnessHit(d: Float32Array, o: number, classes: number, act: (v: number) => number, options: DetectOptions): { classId: number; score: number } | undefined {
  const obj = act(d[o + 4]!);
  if (obj < options.threshold) return undefined; // score = obj × cls ≤ obj
  const best = bestClass(d, o + 5, classes);
  const score = obj * act(best.value);
  if (score < options.threshold || (options.classes && !options.classes.has(best.classId))) return undefined;
  return { classId: best.classId, score };
}

function tensor(outputs: Outputs, name: string): TensorMsg<Float32Array> {
  const t = outputs[name];
  if (!t) throw new Error(`the model has no output named ${name} (it has ${Object.keys(outputs).join(', ')})`);
  return t;
}

export interface YoloxSpec {
  output: string;
  strides: number[];
  activation: 'sigmoid' | 'none';
}

/**
 * YOLOX grid output `[1, anchors, 5 + classes]`, rows `[tx, ty, tw, th, obj, cls…]`, anchors
 * walking each stride's grid row-major: centre `(t + g) × s`, size `exp(t) × s`, score
 * `obj × max cls`. Returns candidates above the threshold, before NMS.
 */
export function decodeYolox(outputs: Outputs, spec: YoloxSpec, inputSize: Size, transform: InputTransform, options: DetectOptions): Detection[] {
  const out = tensor(outputs, spec.output);
  const [, rows, width] = out.dims as [number, number, number];
  const classes = width - 5;
  const grids = spec.strides.map((s) => {
    const gw = Math.floor(inputSize.width / s);
    return { s, gw, cells: gw * Math.floor(inputSize.height / s) };
  });
  const expected = grids.reduce((n, g) => n + g.cells, 0);
  const anchors = out.rows ? (out.rows.length ? out.rows[out.rows.length - 1]! + 1 : 0) : rows;
  if (out.rows ? anchors > expected : anchors !== expected) throw new Error(`YOLOX output has ${anchors} anchors, strides ${spec.strides.join('/')} on ${inputSize.width}x${inputSize.height} give ${expected}`);
  const act = spec.activation === 'sigmoid' ? sigmoid : (v: number) => v;
  const d = out.data;
  const found: Detection[] = [];
  // Row r of the output (or the r-th kept row, anchor out.rows[r]): anchors walk each stride's grid row-major.
  for (let r = 0; r < rows; r++) {
    const o = r * width;
    const hit = objectnessHit(d, o, classes, act, options);
    if (!hit) continue;
    let anchor = out.rows ? out.rows[r]! : r;
    let g = 0;
    while (anchor >= grids[g]!.cells) anchor -= grids[g++]!.cells;
    const grid = grids[g]!;
    const gx = anchor % grid.gw;
    const gy = (anchor - gx) / grid.gw;
    const cx = (d[o]! + gx) * grid.s;
    const cy = (d[o + 1]! + gy) * grid.s;
    const w = Math.exp(d[o + 2]!) * grid.s;
    const h = Math.exp(d[o + 3]!) * grid.s;
    found.push({ box: mapBox(transform, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), ...hit });
  }
  return found;
}

/**
 * What a run may leave out of a detector's output for this threshold: for YOLOX, the anchors whose
 * objectness is below it (a detection's score is objectness × class score, so none of them could
 * be one; for raw logits a hair below the threshold's logit, and decodeYolox decides exactly).
 * Undefined for the other families, and for a threshold that keeps everything.
 */
export function candidateRows(decoder: DetectDecoder, threshold: number): RowFilter | undefined {
  if (decoder.family !== 'yolox' || !(threshold > 0)) return undefined;
  const min = decoder.activation === 'sigmoid' ? (threshold >= 1 ? Infinity : Math.log(threshold / (1 - threshold)) - 1e-6) : threshold;
  return { output: decoder.output, column: 4, min };
}

export interface YoloSpec {
  output: string;
  /** `sigmoid` when objectness and class scores are raw logits; `none` when the export applies it (Ultralytics does). */
  activation: 'sigmoid' | 'none';
}

/** The one output tensor as `[1, a, b]`, or an error naming what was expected. */
function rows3d(outputs: Outputs, name: string, what: string): { d: Float32Array; a: number; b: number } {
  const out = tensor(outputs, name);
  const [batch, a, b] = out.dims;
  if (out.dims.length !== 3 || batch !== 1 || a === undefined || b === undefined || out.data.length !== a * b) {
    throw new Error(`output ${name} has dims [${out.dims.join(', ')}]; ${what}`);
  }
  return { d: out.data, a, b };
}

/**
 * YOLOv5 export output `[1, N, 5 + classes]`, rows `[cx, cy, w, h, obj, cls…]`, box centre and
 * size in model-input pixels (the grid and anchors are already applied inside the graph). As
 * yolov5's `non_max_suppression`: rows with `obj` under the threshold are skipped, then score
 * `obj × max cls` (the best class only). Returns candidates above the threshold, before NMS.
 */
export function decodeYolov5(outputs: Outputs, spec: YoloSpec, transform: InputTransform, options: DetectOptions): Detection[] {
  const { d, a: n, b: width } = rows3d(outputs, spec.output, 'a YOLOv5 detector answers [1, boxes, 5 + classes]');
  const classes = width - 5;
  if (classes < 1) throw new Error(`output ${spec.output} rows hold ${width} values; YOLOv5 rows are cx, cy, w, h, obj and at least one class score`);
  const act = spec.activation === 'sigmoid' ? sigmoid : (v: number) => v;
  const found: Detection[] = [];
  for (let i = 0, o = 0; i < n; i++, o += width) {
    const hit = objectnessHit(d, o, classes, act, options);
    if (!hit) continue;
    const cx = d[o]!;
    const cy = d[o + 1]!;
    const w = d[o + 2]!;
    const h = d[o + 3]!;
    found.push({ box: mapBox(transform, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), ...hit });
  }
  return found;
}

/**
 * YOLOv8 / YOLO11 export output `[1, 4 + classes, N]`: transposed (one column per box), rows
 * `cx, cy, w, h` in model-input pixels then one row per class score, no objectness. As
 * Ultralytics' `non_max_suppression`: score = the best class score. Returns candidates above the
 * threshold, before NMS.
 */
export function decodeYolov8(outputs: Outputs, spec: YoloSpec, transform: InputTransform, options: DetectOptions): Detection[] {
  const { d, a: rows, b: n } = rows3d(outputs, spec.output, 'a YOLOv8/YOLO11 detector answers [1, 4 + classes, boxes]');
  const classes = rows - 4;
  if (classes < 1) throw new Error(`output ${spec.output} has ${rows} rows; YOLOv8 outputs are cx, cy, w, h and at least one class row`);
  const act = spec.activation === 'sigmoid' ? sigmoid : (v: number) => v;
  const found: Detection[] = [];
  for (let i = 0; i < n; i++) {
    const best = bestClass(d, 4 * n + i, classes, n);
    const score = act(best.value);
    if (score < options.threshold || (options.classes && !options.classes.has(best.classId))) continue;
    const cx = d[i]!;
    const cy = d[n + i]!;
    const w = d[2 * n + i]!;
    const h = d[3 * n + i]!;
    found.push({ box: mapBox(transform, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), classId: best.classId, score });
  }
  return found;
}

export interface SsdSpec {
  outputs: { boxes: string; scores: string; classes: string; count?: string };
  boxFormat: 'yxyx' | 'xyxy';
  normalized: boolean;
  classOffset: number;
}

/**
 * SSD-style outputs as the ONNX Model Zoo (TensorFlow Object Detection API) exports them: boxes
 * `[1, N, 4]`, scores `[1, N]`, classes `[1, N]` and optionally the valid count `[1]`.
 */
export function decodeSsd(outputs: Outputs, spec: SsdSpec, inputSize: Size, transform: InputTransform, options: DetectOptions): Detection[] {
  const boxes = tensor(outputs, spec.outputs.boxes).data;
  const scores = tensor(outputs, spec.outputs.scores).data;
  const classes = tensor(outputs, spec.outputs.classes).data;
  let n = scores.length;
  if (boxes.length !== n * 4 || classes.length !== n) throw new Error(`SSD outputs disagree: ${boxes.length / 4} boxes, ${n} scores, ${classes.length} classes`);
  if (spec.outputs.count) n = Math.min(n, Math.max(0, Math.round(tensor(outputs, spec.outputs.count).data[0] ?? 0)));
  const sx = spec.normalized ? inputSize.width : 1;
  const sy = spec.normalized ? inputSize.height : 1;
  const found: Detection[] = [];
  for (let i = 0; i < n; i++) {
    const score = scores[i]!;
    const classId = Math.round(classes[i]!) + spec.classOffset;
    if (score < options.threshold || (options.classes && !options.classes.has(classId))) continue;
    const b = boxes.subarray(i * 4, i * 4 + 4);
    const [x1, y1, x2, y2] = spec.boxFormat === 'yxyx' ? [b[1]!, b[0]!, b[3]!, b[2]!] : [b[0]!, b[1]!, b[2]!, b[3]!];
    found.push({ box: mapBox(transform, x1 * sx, y1 * sy, x2 * sx, y2 * sy), classId, score });
  }
  return found;
}

export function iou(a: readonly number[], b: readonly number[]): number {
  const ix = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const iy = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = ix * iy;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return union <= 0 ? 0 : inter / union;
}

/**
 * Greedy non-maximum suppression within each class. Returns the kept detections, best first;
 * at most `limit` of them (the work is then bounded by candidates × limit).
 */
export function nmsPerClass(detections: Detection[], iouThreshold: number, limit = Infinity): Detection[] {
  const sorted = [...detections].sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const d of sorted) {
    if (kept.length >= limit) break;
    if (!kept.some((k) => k.classId === d.classId && iou(k.box, d.box) > iouThreshold)) kept.push(d);
  }
  return kept;
}

/**
 * Every detector family, decoded the same way: the family's candidates above the threshold (and
 * in the class filter), boxes in original-image pixels, then per-class NMS with the manifest's
 * IoU (or the model's own NMS when an SSD entry says `nmsIou: null`). Best first.
 */
export function decodeDetections(outputs: Outputs, decoder: DetectDecoder, inputSize: Size, transform: InputTransform, options: DetectOptions): Detection[] {
  const limit = options.maxDetections ?? Infinity;
  switch (decoder.family) {
    case 'yolox':
      return nmsPerClass(decodeYolox(outputs, decoder, inputSize, transform, options), decoder.nmsIou, limit);
    case 'yolov5':
      return nmsPerClass(decodeYolov5(outputs, decoder, transform, options), decoder.nmsIou, limit);
    case 'yolov8':
      return nmsPerClass(decodeYolov8(outputs, decoder, transform, options), decoder.nmsIou, limit);
    case 'ssd': {
      const candidates = decodeSsd(outputs, decoder, inputSize, transform, options);
      if (decoder.nmsIou !== null) return nmsPerClass(candidates, decoder.nmsIou, limit);
      return candidates.sort((a, b) => b.score - a.score).slice(0, limit);
    }
    default: {
      const unknown: never = decoder;
      throw new Error(`unknown detector family ${(unknown as { family: string }).family}`);
    }
  }
}
