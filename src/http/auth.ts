import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { apiKeyCheck, presentedKey } from '../transport/keys.js';

/** Routes that answer without a key: liveness and readiness probes must never need credentials. */
export const ALWAYS_OPEN = ['/ping', '/healthz', '/readyz'] as const;

/** Static pages (playground, Swagger UI, OpenAPI document), open to GET when CVSERVE_DOCS_PUBLIC is on. */
function isDocsPage(req: Request): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const p = req.path;
  return p === '/' || p === '/openapi.json' || p === '/docs' || p.startsWith('/docs/') || p.startsWith('/playground/');
}

/**
 * API key check; passes everything when no key is configured. Keys are compared as sha256 digests with
 * timingSafeEqual: equal lengths whatever was sent, and every configured key is compared each time
 * so the answer time says nothing about which key came close. Keys are never logged (the request
 * log holds method and path only; the logger also redacts these headers).
 */
export function apiKeyAuth(config: Pick<Config, 'apiKeys' | 'apiKeysFile' | 'metricsPublic' | 'docsPublic'>): RequestHandler {
  const keys = apiKeyCheck(config);
  if (!keys.required) return (_req, _res, next) => next();
  const open = new Set<string>([...ALWAYS_OPEN, ...(config.metricsPublic ? ['/metrics'] : [])]);
  return (req: Request, _res: Response, next: NextFunction) => {
    if (open.has(req.path) || (config.docsPublic && isDocsPage(req))) return next();
    const key = presentedKey(req);
    if (keys.accepts(key)) return next();
    next(
      new AppError('UNAUTHORIZED', {
        detail: key === undefined ? 'no API key presented' : 'API key not recognised',
        headers: { 'WWW-Authenticate': 'Bearer' },
      }),
    );
  };
}
