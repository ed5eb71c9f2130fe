import type { Request, Response } from 'express';
import { errorBody } from '../errors.js';
import type { Answer } from '../resources/answer.js';
import type { AnyResource } from '../resources/contract.js';
import type { PipelineServices } from '../resources/pipeline.js';
import { executeForRequest } from '../transport/execute.js';
import { logFailure, toAppError } from '../transport/errors.js';
import type { ImageRequestReader } from './image-request.js';

/** Sends a finished answer. */
export function sendAnswer(res: Response, answer: Answer): void {
  if (answer.kind === 'json') res.json(answer.body);
  else res.type(answer.contentType).send(answer.bytes);
}

/** `Accept: text/event-stream`: the client wants progress events, then the result, on one response. */
function wantsEventStream(accept: string): boolean {
  return /\btext\/event-stream\b/i.test(accept);
}

/**
 * Server-sent events for one request: `progress` ({done, total}) while long work runs, then
 * `result` (the JSON answer; an image as {"imageBase64", "format"}) or `error` (the error body).
 * The stream opens with the first event, so a request refused before any work still gets its
 * plain HTTP status and error body.
 */
class EventStream {
  private opened = false;

  constructor(private readonly res: Response) {}

  send(event: 'progress' | 'result' | 'error', data: unknown): void {
    if (!this.opened) {
      this.opened = true;
      this.res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
      this.res.flushHeaders();
    }
    this.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  get started(): boolean {
    return this.opened;
  }

  end(): void {
    this.res.end();
  }
}

function answerAsJson(answer: Answer): Record<string, unknown> {
  return answer.kind === 'json' ? answer.body : { imageBase64: answer.bytes.toString('base64'), format: answer.format };
}

/**
 * One HTTP request to a resource: the request becomes a ResourceRequest for the pipeline, its
 * answer becomes the response (or, for `Accept: text/event-stream`, progress events and then the
 * answer). The deadline is the request's own timer; a client that hangs up cancels it, dropping
 * queued work.
 */
export async function serveResource(
  resource: AnyResource,
  req: Request,
  res: Response,
  deps: { reader: ImageRequestReader; services: PipelineServices; timeoutMs: number },
): Promise<void> {
  const accept = req.get('accept') ?? '';
  const events = wantsEventStream(accept) ? new EventStream(res) : undefined;
  try {
    const { answer, cache } = await executeForRequest(resource, { open: () => deps.reader.read(req, res), accept: events ? '' : accept }, deps.services, {
      res,
      log: req.log,
      timeoutMs: deps.timeoutMs,
      progress: events && ((done, total) => events.send('progress', { done, total })),
    });
    if (cache) res.setHeader('X-Cache', cache);
    if (!events) return sendAnswer(res, answer);
    events.send('result', answerAsJson(answer));
    events.end();
  } catch (err) {
    const appError = toAppError(err);
    if (!events?.started) throw appError;
    // The stream is open: the error travels as its last event.
    logFailure(req.log, err, appError);
    events.send('error', errorBody(appError));
    events.end();
  }
}
