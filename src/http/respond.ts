import type { Request, Response } from 'express';
import type { ImageInput } from '../image/types.js';
import { formatAnswer, type Answer } from '../resources/answer.js';
import type { AnyResource, ResourceResult } from '../resources/contract.js';
import type { ImageSource } from './image-request.js';

/**
 * Sends a resource's result as the HTTP answer. What the answer is (JSON, drawn boxes, image bytes
 * or {"imageBase64", "format"}) is decided transport-free in formatAnswer, which the CLI uses too.
 */
export async function sendResult(
  req: Request,
  res: Response,
  resource: AnyResource,
  result: ResourceResult,
  params: Record<string, unknown>,
  input: ImageInput,
  source: ImageSource,
): Promise<void> {
  sendAnswer(res, await formatAnswer(resource, result, params, input, { accept: req.get('accept') ?? '', source }));
}

/** Sends a finished answer (also one from the response cache). */
export function sendAnswer(res: Response, answer: Answer): void {
  if (answer.kind === 'json') res.json(answer.body);
  else res.type(answer.contentType).send(answer.bytes);
}
