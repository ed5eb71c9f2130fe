import { readFile } from 'node:fs/promises';
import type { OnnxEngine } from '../../engines/onnx/engine.js';
import type { Outputs, RowFilter, WarmupInput } from '../../engines/onnx/protocol.js';
import { unavailable } from '../pipeline.js';
import { findModel, modelFiles, modelForRoute, spatialSize, type ClassifyModel, type DetectModel, type ModelEntry } from '../../models/manifest.js';
import type { ModelGate, ModelStore } from '../../models/store.js';
import { prepareImage, resizeTarget, type PreparedImage, type Size } from '../../image/preprocess.js';
import { batchDims, packImage, type InputPacking, type PackSpec } from '../../image/pack.js';
import type { ImageInput } from '../../image/types.js';
import type { CostItem, ImageHeader, InitContext, ResourceStatus } from '../contract.js';

export interface ModelChoice {
  /** A model id from the manifest instead of the one `routes` names for this route. */
  modelId?: string;
  /** Route name (default: the resource's own). */
  name?: string;
}

/** Reads a labels file: one name per line, line i = class i. */
export async function readLabels(file: string): Promise<string[]> {
  const lines = (await readFile(file, 'utf8')).split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/**
 * The tensor one image at `size` is fed as: the model's input, or, for a graph fed past its
 * space-to-depth layer, that layer's output (4 × the channels at half the height and width).
 */
export function feedOf(model: ModelEntry, size: Size): { name: string; dims: number[] } {
  const { input } = model;
  const s2d = input.spaceToDepth;
  if (s2d) return { name: s2d.tensor, dims: [1, 12, size.height / 2, size.width / 2] };
  return { name: input.name, dims: batchDims(input.layout, 1, size) };
}

/**
 * The space-to-depth output fed instead of the input: the input's batch dim (fixed or free), and
 * free height and width when the model runs at other sizes.
 */
function spaceToDepthFeed(model: ModelEntry): { tensor: string; dims: Array<number | string> } | undefined {
  const s2d = model.input.spaceToDepth;
  const size = spatialSize(model.input);
  if (!s2d || !size) return undefined;
  const batch = model.input.shape[0]!;
  const free = Boolean(model.input.sizes?.length);
  return { tensor: s2d.tensor, dims: [batch, 12, free ? `${s2d.tensor}_height` : size.height / 2, free ? `${s2d.tensor}_width` : size.width / 2] };
}

/**
 * A float image input is sent to the workers as the prepared 8-bit RGB and packed there
 * (engine.ts `packs`); a uint8 one is packed here (a copy of the same size).
 */
function workerPacking(model: ModelEntry): Record<string, InputPacking> | undefined {
  if ((model.task !== 'classify' && model.task !== 'detect') || model.input.dtype !== 'float32') return undefined;
  const spec: PackSpec = { ...model.preprocess, layout: model.input.layout, dtype: model.input.dtype };
  const s2d = model.input.spaceToDepth;
  return { [s2d ? s2d.tensor : model.input.name]: { spec, blocks: s2d?.blocks } };
}

/** Zero inputs for the warm-up run: free dimensions become 1 (batch) or the tile size (spatial). */
export function warmupInputs(model: ModelEntry): Record<string, WarmupInput> {
  const { input } = model;
  const size = spatialSize(input);
  if (input.spaceToDepth && size) {
    const { name, dims } = feedOf(model, size);
    return { [name]: { dims, dtype: input.dtype } };
  }
  const tile = model.task === 'superres' ? model.superres.tile : 1;
  const dims = input.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : tile));
  return { [input.name]: { dims, dtype: input.dtype } };
}

/** The graph dims that carry height and width, freed when the model declares other sizes. */
export function spatialDims(model: ModelEntry): Record<string, number[]> | undefined {
  if (!model.input.sizes?.length) return undefined;
  return { [model.input.name]: model.input.layout === 'NCHW' ? [2, 3] : [1, 2] };
}

/** One warm-up per other declared size (each new input shape is planned on its first run). */
export function sizeWarmups(model: ModelEntry): Record<string, WarmupInput>[] {
  return (model.input.sizes ?? []).map((side) => {
    if (model.input.spaceToDepth) {
      const { name, dims } = feedOf(model, { width: side, height: side });
      return { [name]: { dims, dtype: model.input.dtype } };
    }
    const [name, w] = Object.entries(warmupInputs(model))[0]!;
    const dims = [...w.dims];
    const [h, x] = model.input.layout === 'NCHW' ? [2, 3] : [1, 2];
    dims[h] = side;
    dims[x] = side;
    return { [name]: { ...w, dims } };
  });
}

/**
 * The input size a request runs at: the model's own, or, for a square image no larger than one of
 * the other sizes the manifest declares for it, the smallest such size (Frigate's 320x320 frame runs
 * YOLOX-nano at 320 instead of being upscaled to 416).
 */
export function runSize(model: ModelEntry, fixed: Size, image: Size): Size {
  if (image.width !== image.height) return fixed;
  const side = (model.input.sizes ?? []).filter((s) => s >= image.width && s < fixed.width).sort((a, b) => a - b)[0];
  return side ? { width: side, height: side } : fixed;
}

/**
 * What every ONNX-backed route shares: pick the model (the manifest's `routes[name]`, or an
 * explicit id), wait for its verified files through the model store, load it into the engine,
 * and report not-ready with the reason (missing file, fetch in progress, sha256 mismatch) until then.
 */
export class OnnxModelBinding<M extends ModelEntry> {
  model?: M;
  labels: string[] = [];
  engine?: OnnxEngine;
  private gate?: ModelGate;
  private problem: ResourceStatus = { ready: false, reason: 'not initialised' };

  constructor(
    private readonly route: string,
    private readonly task: M['task'],
    private readonly modelId?: string,
  ) {}

  async init(ctx: InitContext): Promise<void> {
    const store: ModelStore = ctx.engines.models;
    const model = this.modelId ? findModel(store.manifest, this.modelId) : modelForRoute(store.manifest, this.route);
    if (!model) {
      this.problem = { ready: false, reason: `the model manifest names no model for /${this.route}` };
      return;
    }
    if (model.task !== this.task) {
      this.problem = { ready: false, reason: `model ${model.id} is a ${model.task} model; /${this.route} needs ${this.task}` };
      return;
    }
    this.model = model as M;
    this.engine = ctx.engines.onnx;
    const engine = ctx.engines.onnx;
    this.gate = store.watch(
      modelFiles(model),
      async () => {
        if ('labels' in model) this.labels = await readLabels(store.path(model.labels));
        const t0 = performance.now();
        await engine.load({
          id: model.id,
          path: store.path(model.file),
          warmup: warmupInputs(model),
          batchable: typeof model.input.shape[0] === 'string',
          freeDims: spatialDims(model),
          feedFrom: spaceToDepthFeed(model),
          extraWarmups: sizeWarmups(model),
          packs: workerPacking(model),
          threads: model.threads,
          workers: model.workers,
        });
        ctx.log.info({ model: model.id, ms: Math.round(performance.now() - t0), workers: engine.loadTimes(model.id).map(Math.round) }, `/${this.route}: ${model.file} loaded`);
      },
      ctx.log,
    );
    store.fetchAllMissing(ctx.log);
    await this.gate.initial;
  }

  status(): ResourceStatus {
    return this.gate ? this.gate.status() : this.problem;
  }

  /** Settles once the route is ready, or has definitely failed (for tests and startup waits). */
  settled(): Promise<void> {
    return this.gate?.settled ?? Promise.resolve();
  }

  /** The loaded model, or 503 naming the reason. */
  require(): { model: M; engine: OnnxEngine; labels: string[] } {
    const status = this.status();
    if (!status.ready || !this.model || !this.engine) {
      throw unavailable(this.route, status.ready ? 'not initialised' : status.reason);
    }
    return { model: this.model, engine: this.engine, labels: this.labels };
  }

  close(): void {
    this.gate?.close();
  }

  /** The model's fixed input height and width. */
  inputSize(): { width: number; height: number } {
    const size = this.model && spatialSize(this.model.input);
    if (!size) throw new Error('the model input has no fixed size');
    return size;
  }
}

/** The prepared pixels as a plain Uint8Array the run may move to a worker (a copy where they are the input's own). */
function ownedBytes(prepared: PreparedImage): Uint8Array {
  const { rgb } = prepared;
  return prepared.shared ? rgb.slice() : new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength);
}

/** The lifecycle every ONNX-backed resource delegates to its binding; subclasses add params and run. */
export abstract class OnnxModelResource<M extends ModelEntry> {
  readonly name: string;
  protected readonly binding: OnnxModelBinding<M>;

  protected constructor(defaultName: string, task: M['task'], choice: ModelChoice) {
    this.name = choice.name ?? defaultName;
    this.binding = new OnnxModelBinding<M>(this.name, task, choice.modelId);
  }

  init(ctx: InitContext): Promise<void> {
    return this.binding.init(ctx);
  }

  status(): ResourceStatus {
    return this.binding.status();
  }

  /** Settles once the model is loaded or has definitely failed. */
  settled(): Promise<void> {
    return this.binding.settled();
  }

  async close(): Promise<void> {
    this.binding.close();
  }

  /**
   * Preprocess and infer, the steps every fixed-input model shares: the image resized, cropped or
   * padded as the manifest says and packed into the input tensor (preprocess), one run on the
   * engine (infer). What the outputs mean is the subclass's postprocess.
   */
  protected async infer(
    this: OnnxModelResource<ClassifyModel | DetectModel>,
    input: ImageInput,
    signal: AbortSignal,
    outputs?: string[],
    keepRows?: RowFilter,
  ): Promise<{ outputs: Outputs; prepared: PreparedImage; size: Size }> {
    const { model, engine } = this.binding.require();
    const size = runSize(model, this.binding.inputSize(), input);
    const prepared = await prepareImage(input, model.preprocess.resize, size);
    const feed = feedOf(model, size);
    const data = model.input.dtype === 'float32' ? ownedBytes(prepared) : packImage(prepared.rgb, size.width * size.height, { ...model.preprocess, layout: model.input.layout, dtype: 'uint8' }, new Uint8Array(prepared.rgb.length));
    const result = await engine.run(model.id, { [feed.name]: { data, dims: feed.dims } }, { signal, outputs, keepRows });
    return { outputs: result, prepared, size };
  }

  /** The resize on the way to a fixed-size model input, which an extreme aspect ratio can make huge. */
  protected inputResizeCost(image: ImageHeader): CostItem[] {
    const { model } = this.binding.require();
    if (!('preprocess' in model) || !('resize' in model.preprocess)) return [];
    const { width, height } = resizeTarget(model.preprocess.resize, image, this.binding.inputSize());
    return [{ limit: 'maxWorkPixels', amount: width * height, what: `the ${width}x${height} resized copy of the ${image.width}x${image.height} image` }];
  }
}
