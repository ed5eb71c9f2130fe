import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Config } from '../config.js';
import type { Engines } from '../engines/engines.js';
import type { FaceGalleryService } from '../faces/service.js';
import type { DecodeBudget } from '../image/decode-memory.js';
import type { DrawBox, ImageInput, InputFormat, OutputFormat, RawImage } from '../image/types.js';
import type { Readiness } from '../readiness.js';

/**
 * The contract every capability implements, built-in or plugin. A resource knows nothing about
 * HTTP: it declares its parameters once (a zod object: types, defaults, bounds, descriptions), and
 * that one declaration drives validation, the OpenAPI document, the playground form, the CLI,
 * metrics and, with `cost`, the bound on what one request may make it allocate or compute.
 * Lifecycle: init (once, at startup) → run (per request) → close (at shutdown).
 * Write one with `defineResource` (./define.ts), which checks it and fills in what is optional.
 */
export interface Resource<Params extends z.ZodObject = z.ZodObject> {
  /** Route name: the resource answers at `/${name}`. Lowercase letters, digits and dashes. */
  readonly name: string;
  readonly summary: string;
  readonly description?: string;
  /** Every parameter, from the query string, form fields or JSON fields. */
  readonly params: Params;
  /** What a successful answer is. */
  readonly output: ResourceOutputSpec;
  /** Methods the route accepts; GET takes the image from ?url=. Default both. */
  readonly methods?: readonly ('GET' | 'POST')[];

  init(ctx: InitContext): Promise<void>;
  /** Whether the resource can run now, and if not, why (e.g. a missing model file). */
  status(): ResourceStatus;
  /**
   * Everything one request would allocate or compute that grows with the image or the parameters
   * (resize targets, tiles, detection pyramids, output images), known from the header alone. The
   * pipeline refuses the request (413, naming the limit) before any pixel is decoded when one item
   * is over its limit. Called only when the resource is ready.
   */
  cost?(image: ImageHeader, params: z.output<Params>): CostItem[];
  run(input: ImageInput, params: z.output<Params>, ctx: RunContext): Promise<ResourceResult>;
  close(): Promise<void>;
}

export type ResourceOutputSpec =
  /**
   * JSON answer whose body matches `schema`; `drawable` means boxes can be drawn on the input
   * (draw=true); `rendersImage` means run may answer an image instead (e.g. a chart of the numbers,
   * when `ctx.prefers` is not 'json').
   */
  | { kind: 'json'; schema: z.ZodType; drawable?: boolean; rendersImage?: boolean }
  /**
   * Image answer; as JSON `{imageBase64, format}` when the client asks for JSON. `defaultFormat`:
   * the format `run` answers in when the caller names none ('input': the input's, where it can be
   * written), declared so an answer too large for it is refused before the work.
   */
  | { kind: 'image'; defaultFormat?: 'jpeg' | 'png' | 'webp' | 'input' };

export type ResourceStatus = Readiness;

/** What the image header says, before any pixel is decoded (dimensions after EXIF orientation). */
export interface ImageHeader {
  width: number;
  height: number;
  format: InputFormat;
}

/** The named limits a cost item can be held to (the settings of src/config.ts with these keys). */
export type CostLimitName = 'maxOutputPixels' | 'maxWorkPixels' | 'detectMaxPyramidPixels' | 'upscaleMaxTiles' | 'ocrMaxSide' | 'ocrMaxBoxes';

/** One thing a request would make: how much of it, which limit holds it, and what it is (for the refusal). */
export interface CostItem {
  limit: CostLimitName;
  amount: number;
  /** E.g. "the 256x6144000 resized copy": the refusal message names it. */
  what: string;
  /** For output images: their size, checked against what the answer's format can hold. */
  size?: { width: number; height: number };
}

/** What resources are given: the engines, and the face gallery service over the face engine. */
export interface ServiceSet extends Engines {
  /** Register, recognize, list, delete, match; its database opens on first use. */
  faces: FaceGalleryService;
  /** CVSERVE_DECODE_MEMORY_BYTES: the memory every image decode of the process shares. */
  decodeBudget: DecodeBudget;
}

export interface InitContext {
  config: Config;
  engines: ServiceSet;
  log: Logger;
}

export interface RunContext {
  /** Aborted when the client goes away or the request times out. Pass it to engine calls. */
  signal: AbortSignal;
  log: Logger;
  /** The face of the answer the caller asked for (Accept, or a JSON request), if any. */
  prefers?: 'json' | 'image';
  /** The format an image answer will be encoded in, when already decided before the run. */
  imageFormat?: OutputFormat;
  /** Reports progress of long work (e.g. tiles done of total), for callers that show it. */
  progress?(done: number, total: number): void;
}

export type ResourceResult =
  | { kind: 'json'; body: Record<string, unknown>; boxes?: DrawBox[] }
  | { kind: 'image'; image: RawImage; /** Preferred output format when the client names none. */ format?: 'jpeg' | 'png' | 'webp' | 'input' }
  /** An image already encoded in `ctx.imageFormat` (a resource that encodes inside its engine). */
  | { kind: 'encoded-image'; bytes: Buffer; format: OutputFormat };

export type AnyResource = Resource<z.ZodObject>;
