import type { Request, Response } from 'express';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

/** An Express-style body parser (multer, body-parser), run outside a router. */
export type Middleware = (req: Request, res: Response, next: (err?: unknown) => void) => void;

export function runMiddleware(mw: Middleware, req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => mw(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
}

/** Largest body a request of this type may have: the image limit plus, for multipart, its form fields. */
export function maxDeclaredBody(type: string, config: Pick<Config, 'maxBodyBytes' | 'maxFields' | 'maxFieldBytes'>): number {
  if (type !== 'multipart/form-data') return config.maxBodyBytes;
  const partOverhead = 1024; // boundary and part headers
  return config.maxBodyBytes + (config.maxFields + 1) * (config.maxFieldBytes + partOverhead);
}

/**
 * Refusals that need no body, for a body whose limit is `limit` bytes: a compressed body (the size
 * limits hold for what arrives, so an inflating parser is not worth its risk), or a Content-Length
 * already over the limit. The answer goes out at once; Node then reads and discards the unread body,
 * so a client still sending it gets the answer rather than a reset, unless the declared size is far
 * over the limit (then the connection closes instead of reading it).
 */
export function refuseBodyBeforeReading(req: Request, res: Response, limit: number): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > DRAIN_FACTOR * limit) res.setHeader('Connection', 'close');
  const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    throw new AppError('UNSUPPORTED_ENCODING', { publicMessage: `Content-Encoding ${encoding} is not accepted: send the body uncompressed` });
  }
  if (declared > limit) {
    throw new AppError('PAYLOAD_TOO_LARGE', { publicMessage: `Request body of ${declared} bytes is over the limit of ${limit} bytes (CVSERVE_MAX_BODY_BYTES)` });
  }
}

/** A refused body up to this many times the limit is read and dropped; a larger one closes the connection. */
const DRAIN_FACTOR = 4;
