import type { Doc } from './openapi.js';
import { requestId } from './request-id.js';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Lifecycle } from './health.js';
import type { Metrics } from './metrics.js';

const BODY = Buffer.from(JSON.stringify({ success: true }));

/**
 * The headers a synchronous header-only middleware (helmet) sets, captured once: they are the
 * same for every answer, so the fast path sends them without running the middleware.
 */
export function staticHeaders(middleware: RequestHandler): [string, string | number | readonly string[]][] {
  const headers: [string, string | number | readonly string[]][] = [];
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.push([name, value]);
      return res;
    },
    removeHeader() {},
    getHeader() {
      return undefined;
    },
  };
  let called = false;
  middleware({ method: 'GET', url: '/ping', headers: {} } as never, res as never, () => {
    called = true;
  });
  if (!called) throw new Error('the header middleware did not finish synchronously');
  return headers;
}

/**
 * `GET /ping` answered before Express: a liveness probe needs no routing, parsing or access log,
 * and the full middleware stack costs several times the answer itself. The answer stays what the
 * Express route gives (same body and security headers, X-Request-Id, counted in the request
 * metrics, Connection: close while draining); cross-origin requests (an Origin header) and
 * anything else go to the app. Health probes are not access-logged.
 */
export function withFastPing(app: RequestListener, deps: { securityHeaders: RequestHandler; metrics: Metrics; lifecycle: Lifecycle }): RequestListener {
  const headers = staticHeaders(deps.securityHeaders);
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/ping' || (req.method !== 'GET' && req.method !== 'HEAD') || req.headers.origin !== undefined) {
      app(req, res);
      return;
    }
    const start = process.hrtime.bigint();
    for (const [name, value] of headers) res.setHeader(name, value);
    const given = req.headers['x-request-id'];
    res.setHeader('X-Request-Id', requestId(given));
    if (deps.lifecycle.shuttingDown) res.setHeader('Connection', 'close');
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', BODY.length);
    res.end(req.method === 'HEAD' ? undefined : BODY);
    deps.metrics.countRequest(req.method, '/ping', 200, Number(process.hrtime.bigint() - start) / 1e9);
  };
}

/** /ping's OpenAPI path item: it answers 200, and nothing else can go wrong there. */
export function pingOpenApi(): Record<string, Doc> {
  return {
    '/ping': {
      get: {
        operationId: 'ping',
        security: [{}],
        tags: ['service'],
        summary: 'Liveness check',
        responses: {
          '200': {
            description: 'The service answers.',
            content: { 'application/json': { schema: { type: 'object', required: ['success'], properties: { success: { const: true } } } } },
          },
        },
      },
    },
  };
}
