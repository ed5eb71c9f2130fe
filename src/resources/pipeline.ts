import type { Logger } from 'pino';
import { AppError } from '../errors.js';
import type { DecodeBudget } from '../image/decode-memory.js';
import { openImage } from '../image/decode.js';
import type { JpegDecoderChoice } from '../image/jpeg-decoder.js';
import { formatAnswer, plannedImageAnswer, preferredAnswer, type Answer, type InputWay } from './answer.js';
import { ResponseCache } from './answer-cache.js';
import type { AnyResource, CostItem, ImageHeader } from './contract.js';
import { checkCost, type CostLimits } from './cost.js';
import type { Deadline } from './deadline.js';
import { parseParams } from './validate.js';

/**
 * The one way a request reaches a resource, whatever the transport (HTTP, the CLI, the DeepStack
 * dialect): readiness → parameters → image bytes → header checks and cost bound → run → answer, all
 * under one deadline. Transports only translate their input into a ResourceRequest and the Answer
 * back; nothing here knows about HTTP.
 */

/** Where the image is: bytes already received, or a URL to fetch (after the parameters are valid). */
export type ImageRef = { way: 'url'; url: string } | { way: Exclude<InputWay, 'url'>; bytes: Buffer };

export interface ResourceRequest {
  /** Reads the parameters and finds the image; called only once the resource is ready, so a 503 costs no upload. */
  open(signal: AbortSignal): Promise<{ fields: Record<string, unknown>; image: ImageRef }>;
  /** What the caller accepts (an HTTP Accept value; '' for no preference). */
  accept: string;
}

/** What the pipeline is given rather than reaching for. */
export interface PipelineServices {
  limits: CostLimits & { maxPixels: number };
  /** Who decodes plain JPEGs (default libjpeg). */
  jpegDecoder?: JpegDecoderChoice;
  /** The memory the process's image decodes share (unchecked without it). */
  decodeBudget?: DecodeBudget;
  /** Downloads a `?url=` image under the service's URL rules. */
  fetchUrl(url: string, signal: AbortSignal): Promise<Buffer>;
  cache?: ResponseCache;
}

export interface ExecuteOptions {
  deadline: Deadline;
  log: Logger;
  progress?(done: number, total: number): void;
}

export interface Executed {
  answer: Answer;
  /** Set when a response cache is on. */
  cache?: 'hit' | 'miss';
  /** Milliseconds spent in `resource.run` (absent when the answer came from the cache). */
  runMs?: number;
}

/** The 503 of a route that cannot run now, naming why. */
export function unavailable(route: string, reason: string): AppError {
  return new AppError('MODEL_UNAVAILABLE', { publicMessage: `/${route} is unavailable: ${reason}` });
}

/** Throws the 503 naming why the resource cannot run, when it cannot. */
export function assertReady(resource: Pick<AnyResource, 'name' | 'status'>): void {
  const status = resource.status();
  if (!status.ready) throw unavailable(resource.name, status.reason);
}

export function executeResource(resource: AnyResource, request: ResourceRequest, services: PipelineServices, options: ExecuteOptions): Promise<Executed> {
  return options.deadline.run(async (signal) => {
    assertReady(resource);
    const { fields, image } = await request.open(signal);
    const params = parseParams(resource.params, fields) as Record<string, unknown>;
    const bytes = image.way === 'url' ? await services.fetchUrl(image.url, signal) : image.bytes;
    const wish = { accept: request.accept, source: image.way };

    const cacheKey = services.cache && ResponseCache.key(resource.name, params, request.accept, image.way, bytes);
    const cached = cacheKey && services.cache!.get(cacheKey);
    if (cached) return { answer: cached, cache: 'hit' as const };

    const input = await openImage(bytes, { maxPixels: services.limits.maxPixels, jpegDecoder: services.jpegDecoder, budget: services.decodeBudget, signal });
    const header: ImageHeader = { width: input.width, height: input.height, format: input.format };
    const planned = plannedImageAnswer(resource, params, header, wish);
    const items: CostItem[] = [...(resource.cost?.(header, params) ?? [])];
    if (planned?.drawn) items.push({ limit: 'maxOutputPixels', amount: header.width * header.height, what: `the ${header.width}x${header.height} image with the results drawn`, size: header });
    checkCost(resource.name, items, services.limits, planned?.format);
    const started = performance.now();
    const result = await resource.run(input, params, { signal, log: options.log, prefers: preferredAnswer(wish), imageFormat: planned?.drawn ? undefined : planned?.format, progress: options.progress });
    const runMs = performance.now() - started;
    signal.throwIfAborted();
    const answer = await formatAnswer(resource, result, params, input, wish);
    if (!cacheKey) return { answer, runMs };
    services.cache!.set(cacheKey, answer);
    return { answer, cache: 'miss' as const, runMs };
  });
}
