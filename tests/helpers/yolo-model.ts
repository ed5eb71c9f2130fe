import { readFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { loadManifest, type ManifestFile } from '../../src/models/manifest.js';
import { constant, encodeModel } from '../engines/onnx-graph.js';
import { entryFor } from '../engines/onnx-fixtures.js';
import { MODELS_DIR, REPO_ROOT } from './paths.js';

/**
 * Tiny generated YOLO detectors (Ultralytics export layouts) whose output is a fixed tensor, with
 * the detections they must give, hand-computed. Input 64x64; the test photo is 160x120, which a
 * centred letterbox maps to 64x48 at rows 8..56: model (x, y) = original (x, y) × 0.4 + (0, 8),
 * so original = (x / 0.4, (y − 8) / 0.4).
 */

export type YoloLayout = 'yolov5' | 'yolov8';

export const YOLO_INPUT = 64;
export const YOLO_LABELS = ['person', 'car', 'dog'] as const;
export const YOLO_IMAGE = { width: 160, height: 120 } as const;

export interface YoloCandidate {
  name: string;
  /** cx, cy, w, h in model-input pixels. */
  box: [number, number, number, number];
  /** YOLOv5 rows: objectness and class scores (score = obj × best class). */
  v5: { obj: number; cls: [number, number, number] };
  /** YOLOv8 columns: class scores (score = best class). */
  v8: [number, number, number];
}

export const YOLO_CANDIDATES: readonly YoloCandidate[] = [
  // model box [12, 18, 28, 42] → original [30, 25, 70, 85]
  { name: 'A person', box: [20, 30, 16, 24], v5: { obj: 0.95, cls: [0.95, 0.05, 0.1] }, v8: [0.9, 0.05, 0.1] },
  // [14, 20, 30, 44] → [35, 30, 75, 90]: IoU 0.67 with A, same class, lower: NMS removes it
  { name: 'B person under A', box: [22, 32, 16, 24], v5: { obj: 0.9, cls: [0.9, 0.1, 0.2] }, v8: [0.8, 0.1, 0.2] },
  // [14, 18, 30, 42] → [35, 25, 75, 85]: overlaps A but is a dog: kept
  { name: 'C dog on A', box: [22, 30, 16, 24], v5: { obj: 0.8, cls: [0.3, 0.02, 0.875] }, v8: [0.3, 0.02, 0.7] },
  // [38, 34, 58, 46] → [95, 65, 145, 95]
  { name: 'D car', box: [48, 40, 20, 12], v5: { obj: 0.75, cls: [0.01, 0.8, 0.02] }, v8: [0.01, 0.6, 0.02] },
  // [46, 16, 54, 24] → [115, 20, 135, 40]; v5 objectness 0.35 and v8 score 0.3: under 0.4
  { name: 'E faint car', box: [50, 20, 8, 8], v5: { obj: 0.35, cls: [0.05, 0.95, 0.01] }, v8: [0.05, 0.3, 0.01] },
  // [-2, 6, 10, 14] → [-5, -5, 25, 15], clipped to [0, 0, 25, 15]
  { name: 'F person in the corner', box: [4, 10, 12, 8], v5: { obj: 0.9, cls: [0.5, 0.1, 0.1] }, v8: [0.5, 0.1, 0.1] },
  // [52, 48, 60, 52] → [130, 100, 150, 110]; v5: obj 0.8 and cls 0.4 pass alone, 0.32 does not; v8 0.35
  { name: 'G car, product under', box: [56, 50, 8, 4], v5: { obj: 0.8, cls: [0.05, 0.4, 0.01] }, v8: [0.02, 0.35, 0.01] },
];

export interface YoloExpected {
  label: (typeof YOLO_LABELS)[number];
  /** Original-image pixels of the 160x120 photo. */
  box: [number, number, number, number];
  /** The score as the decoder computes it from float32 tensor values. */
  score: number;
}

const f = Math.fround;

/** What each layout must detect on the 160x120 photo at threshold 0.4 (DeepStack's default), all classes, NMS 0.45. */
export const YOLO_EXPECTED: Record<YoloLayout, YoloExpected[]> = {
  yolov5: [
    { label: 'person', box: [30, 25, 70, 85], score: f(0.95) * f(0.95) },
    { label: 'dog', box: [35, 25, 75, 85], score: f(0.8) * f(0.875) },
    { label: 'car', box: [95, 65, 145, 95], score: f(0.75) * f(0.8) },
    { label: 'person', box: [0, 0, 25, 15], score: f(0.9) * f(0.5) },
  ],
  yolov8: [
    { label: 'person', box: [30, 25, 70, 85], score: f(0.9) },
    { label: 'dog', box: [35, 25, 75, 85], score: f(0.7) },
    { label: 'car', box: [95, 65, 145, 95], score: f(0.6) },
    { label: 'person', box: [0, 0, 25, 15], score: f(0.5) },
  ],
};

/** The output tensor of a layout: `[1, N, 5 + C]` rows (yolov5) or `[1, 4 + C, N]` columns (yolov8). */
export function yoloTensor(layout: YoloLayout, candidates: readonly YoloCandidate[] = YOLO_CANDIDATES): { dims: number[]; values: number[] } {
  const n = candidates.length;
  const classes = YOLO_LABELS.length;
  if (layout === 'yolov5') {
    return { dims: [1, n, 5 + classes], values: candidates.flatMap((c) => [...c.box, c.v5.obj, ...c.v5.cls]) };
  }
  const rows = [0, 1, 2, 3].map((r) => candidates.map((c) => c.box[r]!));
  for (let k = 0; k < classes; k++) rows.push(candidates.map((c) => c.v8[k]!));
  return { dims: [1, 4 + classes, n], values: rows.flat() };
}

/** An ONNX model with input `images` [1, 3, 64, 64] whose output `output0` is the layout's fixed tensor. */
export function yoloOnnx(layout: YoloLayout, candidates: readonly YoloCandidate[] = YOLO_CANDIDATES): Uint8Array {
  const { dims, values } = yoloTensor(layout, candidates);
  return encodeModel({
    nodes: [constant('output0', { dims, type: 'float32', values })],
    inputs: [{ name: 'images', type: 'float32', dims: [1, 3, YOLO_INPUT, YOLO_INPUT] }],
    outputs: [{ name: 'output0', type: 'float32', dims }],
  });
}

/** The manifest entry of a generated detector, preprocessed as Ultralytics does (centred letterbox, 114, RGB / 255). */
export function yoloModelEntry(id: string, layout: YoloLayout, nmsIou = 0.45) {
  return {
    id,
    file: `${id}.onnx`,
    task: 'detect' as const,
    labels: `${id}.txt`,
    input: { name: 'images', shape: [1, 3, YOLO_INPUT, YOLO_INPUT], layout: 'NCHW' as const, dtype: 'float32' as const },
    preprocess: {
      resize: { mode: 'letterbox' as const, align: 'center' as const, fill: 114, kernel: 'linear' as const },
      channels: 'RGB' as const,
      scale: 1 / 255,
      mean: [0, 0, 0] as [number, number, number],
      std: [1, 1, 1] as [number, number, number],
    },
    decoder: { family: layout, output: 'output0', nmsIou },
  };
}

export interface WrittenYoloModel {
  /** The custom-model name (the manifest id). */
  name: string;
  files: ManifestFile[];
  model: ReturnType<typeof yoloModelEntry>;
  expected: YoloExpected[];
}

/** Writes `<id>.onnx` and its labels `<id>.txt` into dir; returns their manifest entries. */
export async function writeYoloModel(dir: string, options: { id?: string; layout?: YoloLayout } = {}): Promise<WrittenYoloModel> {
  const layout = options.layout ?? 'yolov8';
  const id = options.id ?? `test-${layout}`;
  const onnx = yoloOnnx(layout);
  const labels = YOLO_LABELS.join('\n') + '\n';
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `${id}.onnx`), onnx);
  await writeFile(path.join(dir, `${id}.txt`), labels);
  return {
    name: id,
    files: [entryFor(`${id}.onnx`, onnx, 'onnx'), entryFor(`${id}.txt`, labels, 'labels')],
    model: yoloModelEntry(id, layout),
    expected: YOLO_EXPECTED[layout],
  };
}

export interface YoloModelsDir {
  /** Use as CVSERVE_MODELS_DIR. */
  dir: string;
  /** Use as CVSERVE_MODELS_MANIFEST: the built-in manifest plus the generated detectors. */
  manifestFile: string;
  models: WrittenYoloModel[];
}

/**
 * A models directory for an end-to-end run: the built-in manifest's files (symlinks to the shared
 * models), the generated detectors (default: one yolov8 named `test-yolov8`), and a models.json
 * listing all of them, so `/v1/vision/detection` keeps the COCO detector and
 * `/v1/vision/custom/<name>` finds the generated ones.
 */
export async function writeYoloModelsDir(dir: string, detectors: { id?: string; layout?: YoloLayout }[] = [{}]): Promise<YoloModelsDir> {
  await mkdir(dir, { recursive: true });
  const builtin = JSON.parse(readFileSync(path.join(REPO_ROOT, 'models', 'models.json'), 'utf8')) as { files: unknown[]; models: unknown[] };
  for (const f of loadManifest().files) await symlink(path.join(MODELS_DIR, f.file), path.join(dir, f.file));
  const models: WrittenYoloModel[] = [];
  for (const d of detectors) models.push(await writeYoloModel(dir, d));
  const manifest = {
    ...builtin,
    files: [...builtin.files, ...models.flatMap((m) => m.files)],
    models: [...builtin.models, ...models.map((m) => m.model)],
  };
  const manifestFile = path.join(dir, 'models.json');
  await writeFile(manifestFile, JSON.stringify(manifest, null, 2));
  loadManifest(manifestFile); // throws, with every problem, if the result is not a valid manifest
  return { dir, manifestFile, models };
}

/** The 160x120 photo the expectations are computed for (plain grey: the model ignores its input). */
export function yoloTestImage(format: 'jpeg' | 'png' = 'jpeg'): Promise<Buffer> {
  const img = sharp({ create: { ...YOLO_IMAGE, channels: 3, background: '#808080' } });
  return (format === 'jpeg' ? img.jpeg() : img.png()).toBuffer();
}
