import { readFile } from 'node:fs/promises';
import type { OnnxEngine } from '../../engines/onnx/engine.js';
import type { TextDetectResult, TextRecognizeResult } from '../../engines/onnx/text/protocol.js';
import type { Quad } from '../../engines/onnx/text/db.js';
import { decodeError } from '../../image/decode.js';
import type { ImageInput, RawImage } from '../../image/types.js';
import { modelFiles, modelForRoute, type TextDetectModel, type TextRecognizeModel } from '../../models/manifest.js';
import type { ModelGate } from '../../models/store.js';
import type { CostItem, ImageHeader, InitContext, ResourceStatus } from '../contract.js';
import { unavailable } from '../pipeline.js';

/** The manifest routes naming the text detector and recognizer /ocr and /alpr share. */
export const TEXT_DETECT_ROUTE = 'ocr-detect';
export const TEXT_RECOGNIZE_ROUTE = 'ocr-recognize';

/** The characters decoded by default: Latin letters, digits, space and the separators plates use (the dictionary is mostly CJK). */
export const LATIN_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .-·';

/** The detector's input size for a photo: long side `longSide` (small photos enlarged), each side a multiple of `multiple`. */
export function detectTarget(image: { width: number; height: number }, longSide: number, multiple: number, enlarge: boolean): { width: number; height: number } {
  const long = Math.max(image.width, image.height);
  const ratio = enlarge || long > longSide ? longSide / long : 1;
  const side = (v: number) => Math.max(multiple, Math.round((v * ratio) / multiple) * multiple);
  return { width: side(image.width), height: side(image.height) };
}

export interface Recognized {
  quad: Quad;
  /** Mean text probability of the detector inside the box. */
  boxScore: number;
  line: TextRecognizeResult['lines'][number];
}

/**
 * The text detector and recognizer of the manifest (`routes["ocr-detect"]`, `routes["ocr-recognize"]`),
 * loaded once for every resource that reads text, through the model store's gate like every model.
 * Detection (resize, DB decoding) and recognition (crops, CTC decoding) run in their ONNX workers.
 */
export class TextModels {
  detector?: TextDetectModel;
  recognizer?: TextRecognizeModel;
  private engine?: OnnxEngine;
  private gate?: ModelGate;
  private problem: ResourceStatus = { ready: false, reason: 'not initialised' };
  private started?: Promise<void>;
  /** CVSERVE_OCR_PRELOAD=off: what loads the models, run by the first request that reads text. */
  private loadLater?: () => Promise<void>;
  private loading?: Promise<void>;
  private loadSettled = false;
  /** CVSERVE_OCR_MAX_SIDE and CVSERVE_OCR_MAX_BOXES: the defaults never exceed them; a request that asks for more is refused by cost(). */
  private limits = { maxSide: Infinity, maxBoxes: 50 };

  constructor(private readonly route: string) {}

  /** Idempotent: resources sharing one TextModels start it once. */
  init(ctx: InitContext): Promise<void> {
    return (this.started ??= this.start(ctx));
  }

  private async start(ctx: InitContext): Promise<void> {
    this.limits = { maxSide: ctx.config.ocrMaxSide, maxBoxes: ctx.config.ocrMaxBoxes };
    const store = ctx.engines.models;
    const det = modelForRoute(store.manifest, TEXT_DETECT_ROUTE);
    const rec = modelForRoute(store.manifest, TEXT_RECOGNIZE_ROUTE);
    if (det?.task !== 'text-detect' || rec?.task !== 'text-recognize') {
      this.problem = { ready: false, reason: `the model manifest needs a text-detect model in routes["${TEXT_DETECT_ROUTE}"] and a text-recognize model in routes["${TEXT_RECOGNIZE_ROUTE}"]` };
      return;
    }
    this.detector = det;
    this.recognizer = rec;
    const engine = (this.engine = ctx.engines.onnx);
    const threads = ctx.config.ocrThreads;
    const watch = (): Promise<void> => {
      this.gate = store.watch(
        [...modelFiles(det), ...modelFiles(rec)],
        async () => {
          const dictionary = await readFile(store.path(rec.dictionary), 'utf8');
          const t0 = performance.now();
          const pack = (p: { channels: 'RGB' | 'BGR'; scale: number; mean: [number, number, number]; std: [number, number, number] }) => ({ channels: p.channels, scale: p.scale, mean: p.mean, std: p.std });
          await Promise.all([
            engine.load({
              id: det.id,
              path: store.path(det.file),
              threads,
              workers: det.workers,
              warmup: { [det.input.name]: { dims: [1, 3, 64, 64], dtype: 'float32' } },
              text: { kind: 'db-text', input: det.input.name, output: det.decoder.output, pack: pack(det.preprocess), db: det.decoder },
            }),
            engine.load({
              id: rec.id,
              path: store.path(rec.file),
              threads,
              workers: rec.workers,
              warmup: { [rec.input.name]: { dims: [1, 3, rec.preprocess.height, 160], dtype: 'float32' } },
              text: {
                kind: 'ctc',
                input: rec.input.name,
                output: rec.decoder.output,
                pack: { ...pack(rec.preprocess), height: rec.preprocess.height, maxWidth: rec.preprocess.maxWidth },
                dictionary,
                classes: rec.decoder.classes,
                blankIndex: rec.decoder.blankIndex,
                appendSpace: rec.decoder.appendSpace,
              },
            }),
          ]);
          ctx.log.info({ models: [det.id, rec.id], ms: Math.round(performance.now() - t0), from: store.path(det.file) }, `/${this.route}: text models loaded`);
        },
        ctx.log,
      );
      store.fetchAllMissing(ctx.log);
      return this.gate.initial;
    };
    if (ctx.config.ocrPreload) await watch();
    else this.loadLater = watch;
  }

  status(): ResourceStatus {
    // Loading on demand: requests are taken (and wait in loaded()) until the first load has settled.
    if (this.loadLater && !this.loadSettled) return { ready: true };
    return this.gate ? this.gate.status() : this.problem;
  }

  /** With CVSERVE_OCR_PRELOAD=off, the first caller loads the models (later callers wait for the same load). */
  private async loaded(): Promise<void> {
    if (!this.loadLater || this.loadSettled) return;
    await (this.loading ??= this.loadLater().finally(() => {
      this.loadSettled = true;
    }));
  }

  settled(): Promise<void> {
    return this.gate?.settled ?? Promise.resolve();
  }

  close(): void {
    this.gate?.close();
  }

  private require(route: string): { det: TextDetectModel; rec: TextRecognizeModel; engine: OnnxEngine } {
    const status = this.status();
    if (!status.ready || !this.detector || !this.recognizer || !this.engine) throw unavailable(route, status.ready ? 'not initialised' : status.reason);
    return { det: this.detector, rec: this.recognizer, engine: this.engine };
  }

  /** The detector's input size for this photo at `maxSide` (default: the manifest's long side, at most CVSERVE_OCR_MAX_SIDE). */
  target(image: { width: number; height: number }, maxSide?: number): { width: number; height: number } {
    const p = this.require(this.route).det.preprocess;
    return detectTarget(image, maxSide ?? Math.min(p.longSide, this.limits.maxSide), p.multipleOf, p.enlarge);
  }

  /** Boxes recognized: as asked, else CVSERVE_OCR_MAX_BOXES. */
  maxBoxes(asked?: number): number {
    return asked ?? this.limits.maxBoxes;
  }

  /** What detection and recognition would do, from the header: the resized copy (work pixels, CVSERVE_OCR_MAX_SIDE) and the boxes read (CVSERVE_OCR_MAX_BOXES). */
  cost(image: ImageHeader, maxSide: number | undefined, maxBoxes: number | undefined): CostItem[] {
    const t = this.target(image, maxSide);
    const boxes = this.maxBoxes(maxBoxes);
    return [
      { limit: 'ocrMaxSide', amount: Math.max(t.width, t.height), what: `text detection at ${t.width}x${t.height}` },
      { limit: 'maxWorkPixels', amount: t.width * t.height, what: `the ${t.width}x${t.height} resized copy of the ${image.width}x${image.height} image` },
      { limit: 'ocrMaxBoxes', amount: boxes, what: `recognizing up to ${boxes} text boxes` },
    ];
  }

  /** Text boxes of the photo (original-image coordinates), the detector's most confident first when more than `maxBoxes`. */
  async detect(route: string, input: ImageInput, o: { maxSide?: number; boxThreshold?: number; maxBoxes?: number }, signal: AbortSignal): Promise<TextDetectResult> {
    await this.loaded();
    const { det, engine } = this.require(route);
    const t = this.target(input, o.maxSide);
    const maxBoxes = this.maxBoxes(o.maxBoxes);
    let rgb: Buffer;
    try {
      rgb = await input.decoding(() => input.pipeline().removeAlpha().toColourspace('srgb').resize(t.width, t.height, { fit: 'fill', kernel: 'linear' }).raw().toBuffer());
    } catch (err) {
      throw decodeError(err);
    }
    const result = await engine.task<TextDetectResult>(
      det.id,
      { op: 'text-detect', rgb, width: t.width, height: t.height, source: { width: input.width, height: input.height }, boxThreshold: o.boxThreshold, maxCandidates: 1000 },
      { signal, transferList: wholeBuffer(rgb) },
    );
    if (result.boxes.length > maxBoxes) {
      const kept = new Set([...result.boxes].sort((a, b) => b.score - a.score).slice(0, maxBoxes));
      result.boxes = result.boxes.filter((b) => kept.has(b));
    }
    return result;
  }

  /**
   * Reads every quad of the image (original-image coordinates). The photo is decoded whole only
   * when there is something to read: a 1×40000000 PNG costs libvips 15 s of CPU to decode.
   */
  async recognize(route: string, input: ImageInput, quads: Quad[], o: { charset?: string; alternatives: number }, signal: AbortSignal): Promise<TextRecognizeResult> {
    if (quads.length === 0) return { lines: [], runMs: 0 };
    await this.loaded();
    const { rec, engine } = this.require(route);
    const image = await input.rgb();
    if (image.channels !== 3) throw new Error('recognition needs an RGB image');
    return engine.task<TextRecognizeResult>(
      rec.id,
      { op: 'text-recognize', rgb: image.data, width: image.width, height: image.height, quads, charset: o.charset, alternatives: o.alternatives },
      { signal },
    );
  }
}

function wholeBuffer(b: Uint8Array): ArrayBuffer[] {
  const { buffer } = b;
  return buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === buffer.byteLength ? [buffer] : [];
}
