import { open as openFile } from 'node:fs/promises';
import type { ModelGate } from '../models/store.js';
import { z } from 'zod';
import { boxSchema } from './box.js';
import { cascadeWindow } from '../engines/opencv/cascades.js';
import type { Box, OpenCvEngine } from '../engines/opencv/engine.js';
import { pyramidPixels } from '../engines/opencv/split.js';
import { decodeRgb } from '../image/decode.js';
import type { DrawBox, ImageInput, RawImage } from '../image/types.js';
import type { CostItem, ImageHeader, InitContext, Resource, ResourceResult, ResourceStatus, RunContext } from './contract.js';
import { drawParam, formatParam, param } from './params.js';
import { assertReady } from './pipeline.js';

const params = z.strictObject({
  scaleFactor: param.number({ min: 1.01, max: 2, default: 1.1, description: 'How much the search window grows per scale (detectMultiScale scaleFactor). Smaller finds more, slower.' }),
  minNeighbors: param.int({ min: 0, max: 50, default: 5, description: 'Overlapping candidates a detection needs to be kept (detectMultiScale minNeighbors). Higher means fewer false positives.' }),
  minSize: param.int({ min: 1, max: 10_000, default: 25, description: 'Smallest object searched for, in original-image pixels (square).' }),
  maxSide: param.optionalInt({
    min: 32,
    max: 20_000,
    description: 'Detect on a copy whose longer side is at most this many pixels, then map the boxes back to original coordinates. Off by default; faster on large photos.',
  }),
  draw: drawParam(),
  format: formatParam(),
});

export type HaarParams = z.output<typeof params>;


/** The Python services' answer: `{"status": "ok", "result": [{"box": [x1, y1, x2, y2]}, ...]}`. */
export const detectionsSchema = z.object({
  status: z.literal('ok'),
  result: z.array(z.object({ box: boxSchema })),
});

export interface HaarResourceSpec {
  name: string;
  summary: string;
  description: string;
  /** Cascade file name in the models directory. */
  cascade: string;
}

/**
 * A Haar-cascade detector on the OpenCV worker pool. One class serves every cascade: /detect and
 * /catfacedetection differ only in their spec. Its cascade file goes through the model store's
 * gate like every model file (sha256 against the manifest, background fetch, looked at again
 * while missing); loading it means a worker parses it once, so a broken file is reported here,
 * not per request, and its detection window is read for the cost bound.
 */
export class HaarResource implements Resource<typeof params> {
  readonly name: string;
  readonly summary: string;
  readonly description: string;
  readonly params = params;
  readonly output = { kind: 'json', schema: detectionsSchema, drawable: true } as const;
  readonly cascade: string;
  private opencv?: OpenCvEngine;
  private gate?: ModelGate;
  /** The cascade's detection window, read from its XML once it is there. */
  private window?: [number, number];

  constructor(spec: HaarResourceSpec) {
    this.name = spec.name;
    this.summary = spec.summary;
    this.description = spec.description;
    this.cascade = spec.cascade;
  }

  async init(ctx: InitContext): Promise<void> {
    const opencv = ctx.engines.opencv;
    const store = ctx.engines.models;
    this.opencv = opencv;
    this.gate = store.watch([this.cascade], () => this.load(opencv, store.path(this.cascade)), ctx.log);
    store.fetchAllMissing(ctx.log);
    await this.gate.initial;
  }

  status(): ResourceStatus {
    return this.gate ? this.gate.status() : { ready: false, reason: 'not initialised' };
  }

  /** A worker parses the cascade (a blank detection), and its window is read from the XML. */
  private async load(opencv: OpenCvEngine, file: string): Promise<void> {
    const blank: RawImage = { data: new Uint8Array(32 * 32), width: 32, height: 32, channels: 1 };
    try {
      await opencv.detect(blank, { cascade: this.cascade, scaleFactor: 1.1, minNeighbors: 0, minSize: 1 });
    } catch {
      throw new Error('OpenCV could not parse it');
    }
    const window = await readCascadeWindow(file);
    if (!window) throw new Error('it declares no detection window size');
    this.window = window;
  }

  /** The detection pyramid: every scale of the (maxSide-reduced) image the cascade's window is searched over. */
  cost(image: ImageHeader, p: HaarParams): CostItem[] {
    const size = detectionSize(image, p.maxSide);
    const pixels = pyramidPixels(size.width, size.height, this.window ?? [1, 1], p.scaleFactor, scaledMinSize(p.minSize, image, size));
    return [{ limit: 'detectMaxPyramidPixels', amount: pixels, what: `searching ${size.width}x${size.height} at scaleFactor ${p.scaleFactor}` }];
  }

  async run(input: ImageInput, p: HaarParams, ctx: RunContext): Promise<ResourceResult> {
    assertReady(this);
    // No scale of the search fits the image (thinner than the cascade's window): nothing to decode or search.
    const size = detectionSize(input, p.maxSide);
    if (pyramidPixels(size.width, size.height, this.window ?? [1, 1], p.scaleFactor, scaledMinSize(p.minSize, input, size)) === 0) {
      return { kind: 'json', body: { status: 'ok', result: [] }, boxes: [] };
    }
    const image = await detectionImage(input, p.maxSide);
    const sx = input.width / image.width;
    const sy = input.height / image.height;
    const found = await this.opencv!.detect(
      image,
      {
        cascade: this.cascade,
        scaleFactor: p.scaleFactor,
        minNeighbors: p.minNeighbors,
        minSize: scaledMinSize(p.minSize, input, image),
        window: this.window,
      },
      ctx.signal,
    );
    const boxes: DrawBox[] = found.map((b) => ({ box: scaleBox(b, sx, sy, input.width, input.height) }));
    return { kind: 'json', body: { status: 'ok', result: boxes }, boxes };
  }

  async close(): Promise<void> {}
}

/** The size detection runs at: the image's, or with maxSide its copy fitted inside maxSide × maxSide (as sharp's `inside` fit rounds). */
function detectionSize(image: { width: number; height: number }, maxSide: number | undefined): { width: number; height: number } {
  const longer = Math.max(image.width, image.height);
  if (maxSide === undefined || longer <= maxSide) return { width: image.width, height: image.height };
  const r = maxSide / longer;
  return { width: Math.max(1, Math.round(image.width * r)), height: Math.max(1, Math.round(image.height * r)) };
}

/** minSize is given in original-image pixels; the search runs on the detection image. */
function scaledMinSize(minSize: number, original: { width: number; height: number }, detection: { width: number; height: number }): number {
  return Math.max(1, Math.round(minSize / Math.max(original.width / detection.width, original.height / detection.height)));
}

async function readCascadeWindow(file: string): Promise<[number, number] | undefined> {
  const handle = await openFile(file, 'r');
  try {
    const head = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return cascadeWindow(head.subarray(0, bytesRead).toString('latin1'));
  } finally {
    await handle.close();
  }
}

/**
 * The pixels to detect on: the whole image, or with maxSide a copy whose longer side is at most
 * maxSide. sharp shrinks while decoding (JPEG shrink-on-load) on the libuv pool, which beats
 * decoding at full size and resizing in wasm, and sends fewer bytes to the worker.
 */
async function detectionImage(input: ImageInput, maxSide: number | undefined): Promise<RawImage> {
  if (maxSide === undefined || Math.max(input.width, input.height) <= maxSide) return input.analysisRgb();
  return input.decoding(() => decodeRgb(input.analysisPipeline().resize({ width: maxSide, height: maxSide, fit: 'inside' })));
}

function scaleBox(b: Box, sx: number, sy: number, width: number, height: number): Box {
  if (sx === 1 && sy === 1) return b;
  return [
    Math.min(width, Math.round(b[0] * sx)),
    Math.min(height, Math.round(b[1] * sy)),
    Math.min(width, Math.round(b[2] * sx)),
    Math.min(height, Math.round(b[3] * sy)),
  ];
}
