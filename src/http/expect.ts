import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Config } from '../config.js';
import { AppError, errorBody } from '../errors.js';
import { maxDeclaredBody } from '../transport/body.js';

function refuse(res: ServerResponse, err: AppError): void {
  const body = JSON.stringify(errorBody(err));
  res.writeHead(err.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
  res.end(body);
}

/**
 * `Expect: 100-continue`: the client waits before sending its body, so a body whose declared size
 * is over the limit is refused (413) without ever being sent; otherwise "100 Continue" goes out and
 * the request is handled as usual. Any other expectation gets 417. (Without these listeners Node
 * answers every 100-continue with "100 Continue", inviting a 500 MB upload only to refuse it.)
 */
export function handleExpectContinue(server: Server, handler: RequestListener, config: Config): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const declared = Number(req.headers['content-length'] ?? 0);
    const limit = maxDeclaredBody(type, config);
    if (declared > limit) {
      return refuse(res, new AppError('PAYLOAD_TOO_LARGE', { publicMessage: `Request body of ${declared} bytes is over the limit of ${limit} bytes (CVSERVE_MAX_BODY_BYTES)` }));
    }
    res.writeContinue();
    handler(req, res);
  });
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => refuse(res, new AppError('EXPECTATION_FAILED')));
}
