import type { Request, Response } from 'express';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { openImage } from '../image/decode.js';
import type { AnyResource } from '../resources/contract.js';
import { formatAnswer, preferredAnswer } from '../resources/answer.js';
import { parseParams } from '../resources/validate.js';
import { toAppError } from './errors.js';
import type { ImageRequestReader } from './image-request.js';
import { ResponseCache } from './response-cache.js';
import { sendAnswer } from './respond.js';

/**
 * An AbortSignal for one request: aborted when the overall time limit passes or when the client
 * goes away, so queued engine work is dropped.
 */
function requestSignal(res: Response, timeoutMs: number): AbortSignal {
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort(new AppError('REQUEST_TIMEOUT', { detail: 'client went away' }));
  });
  return AbortSignal.any([AbortSignal.timeout(timeoutMs), gone.signal]);
}

function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** One request to a resource: read the image, validate parameters, run, answer; all under one deadline. */
export async function handleResource(
  resource: AnyResource,
  req: Request,
  res: Response,
  deps: { config: Config; reader: ImageRequestReader; cache?: ResponseCache },
): Promise<void> {
  const status = resource.status();
  if (!status.ready) throw new AppError('MODEL_UNAVAILABLE', { publicMessage: `/${resource.name} is unavailable: ${status.reason}` });
  const signal = requestSignal(res, deps.config.requestTimeoutMs);
  const work = (async () => {
    const request = await deps.reader.read(req, res, signal);
    const params = parseParams(resource.params, request.fields) as Record<string, unknown>;
    const bytes = await request.load();
    const accept = req.get('accept') ?? '';
    const cacheKey = deps.cache && ResponseCache.key(resource.name, params, accept, request.source, bytes);
    const cached = cacheKey && deps.cache!.get(cacheKey);
    if (cached) {
      res.setHeader('X-Cache', 'hit');
      sendAnswer(res, cached);
      return;
    }
    const input = await openImage(bytes, { maxPixels: deps.config.maxPixels });
    const prefers = preferredAnswer({ accept, source: request.source });
    const result = await resource.run(input, params, { signal, log: req.log, prefers });
    signal.throwIfAborted();
    const answer = await formatAnswer(resource, result, params, input, { accept, source: request.source });
    if (cacheKey) {
      deps.cache!.set(cacheKey, answer);
      res.setHeader('X-Cache', 'miss');
    }
    sendAnswer(res, answer);
  })();
  work.catch(() => {}); // its failure is reported through the race below, or not at all once the deadline won
  await Promise.race([work, whenAborted(signal)]).catch((err: unknown) => {
    throw toAppError(err);
  });
}
