import type { Response } from 'express';
import type { Logger } from 'pino';
import { AppError } from '../errors.js';
import type { AnyResource } from '../resources/contract.js';
import { Deadline } from '../resources/deadline.js';
import { executeResource, type Executed, type PipelineServices, type ResourceRequest } from '../resources/pipeline.js';

/** A deadline owned by one request (a plain timer), cancelled when the client goes away before its answer is sent. */
export function requestDeadline(res: Response, timeoutMs: number): Deadline {
  const deadline = new Deadline(timeoutMs);
  res.on('close', () => {
    if (!res.writableFinished) deadline.cancel(new AppError('REQUEST_TIMEOUT', { detail: 'client went away' }));
  });
  return deadline;
}

export interface ForRequest {
  res: Response;
  log: Logger;
  timeoutMs: number;
  progress?(done: number, total: number): void;
  /** Runs under the deadline before the pipeline (e.g. a key that arrives in the body): a refusal here comes before any 503. */
  authorize?(): Promise<void>;
}

/** Resolves once `work` settles, or rejects as soon as `signal` aborts. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** One transport request through the pipeline, under that request's own deadline. */
export async function executeForRequest(resource: AnyResource, request: ResourceRequest, services: PipelineServices, how: ForRequest): Promise<Executed> {
  const deadline = requestDeadline(how.res, how.timeoutMs);
  try {
    if (how.authorize) await untilAborted(how.authorize(), deadline.signal);
    return await executeResource(resource, request, services, { deadline, log: how.log, progress: how.progress });
  } finally {
    deadline.clear();
  }
}
