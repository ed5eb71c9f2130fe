import type { NextFunction, Request, Response } from 'express';
import type { AppError } from '../errors.js';
import { errorBody } from '../errors.js';
import { logFailure, toAppError } from '../transport/errors.js';

export function sendError(res: Response, err: AppError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
  // Answered before the body was read (a deadline, a refusal): the connection ends with this answer, so no second one (408) follows it.
  if (res.req && !res.req.complete) res.setHeader('Connection', 'close');
  res.status(err.status).json(errorBody(err));
}

/** Express error middleware: the one place errors become HTTP answers. */
export function errorHandler(err: unknown, req: Request, res: Response, _next: NextFunction): void {
  const appError = toAppError(err);
  logFailure(req.log, err, appError);
  sendError(res, appError);
}
