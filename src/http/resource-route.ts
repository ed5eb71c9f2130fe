import type { Request, Response } from 'express';
import { AppError } from '../errors.js';
import type { Answer } from '../resources/answer.js';
import type { AnyResource } from '../resources/contract.js';
import { Deadline } from '../resources/deadline.js';
import { executeResource, type PipelineServices } from '../resources/pipeline.js';
import { toAppError } from './errors.js';
import type { ImageRequestReader } from './image-request.js';

/** Sends a finished answer. */
export function sendAnswer(res: Response, answer: Answer): void {
  if (answer.kind === 'json') res.json(answer.body);
  else res.type(answer.contentType).send(answer.bytes);
}

/**
 * One HTTP request to a resource: the request becomes a ResourceRequest for the pipeline, its
 * answer becomes the response. The deadline is the request's own timer; a client that hangs up
 * cancels it, dropping queued work.
 */
export async function serveResource(
  resource: AnyResource,
  req: Request,
  res: Response,
  deps: { reader: ImageRequestReader; services: PipelineServices; timeoutMs: number },
): Promise<void> {
  const deadline = new Deadline(deps.timeoutMs);
  res.on('close', () => {
    if (!res.writableFinished) deadline.cancel(new AppError('REQUEST_TIMEOUT', { detail: 'client went away' }));
  });
  try {
    const { answer, cache } = await executeResource(
      resource,
      { open: () => deps.reader.read(req, res), accept: req.get('accept') ?? '' },
      deps.services,
      { deadline, log: req.log },
    );
    if (cache) res.setHeader('X-Cache', cache);
    sendAnswer(res, answer);
  } catch (err) {
    throw toAppError(err);
  }
}
