import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ConfigError, type Config } from '../config.js';
import { AppError } from '../errors.js';

/** Routes that answer without a key: liveness and readiness probes must never need credentials. */
export const ALWAYS_OPEN = ['/ping', '/healthz', '/readyz'] as const;

/** Every key the service accepts: CVSERVE_API_KEYS plus the lines of CVSERVE_API_KEYS_FILE. */
export function loadApiKeys(config: Pick<Config, 'apiKeys' | 'apiKeysFile'>): string[] {
  const keys = [...config.apiKeys];
  if (config.apiKeysFile) {
    let text: string;
    try {
      text = readFileSync(config.apiKeysFile, 'utf8');
    } catch (err) {
      throw new ConfigError([`CVSERVE_API_KEYS_FILE: cannot read ${config.apiKeysFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
    }
    for (const line of text.split(/\r?\n/)) {
      const key = line.trim();
      if (key && !key.startsWith('#')) keys.push(key);
    }
  }
  return keys;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** Static pages (playground, Swagger UI, OpenAPI document), open to GET when CVSERVE_DOCS_PUBLIC is on. */
function isDocsPage(req: Request): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const p = req.path;
  return p === '/' || p === '/openapi.json' || p === '/docs' || p.startsWith('/docs/') || p.startsWith('/playground/');
}

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
function presentedKey(req: Request): string | undefined {
  const authorization = req.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match) return match[1];
  }
  const header = req.headers['x-api-key'];
  return typeof header === 'string' && header.trim() !== '' ? header.trim() : undefined;
}

/**
 * API key check; passes everything when no key is configured. Keys are compared as sha256 digests with
 * timingSafeEqual: equal lengths whatever was sent, and every configured key is compared each time
 * so the answer time says nothing about which key came close. Keys are never logged (the request
 * log holds method and path only; the logger also redacts these headers).
 */
export function apiKeyAuth(config: Pick<Config, 'apiKeys' | 'apiKeysFile' | 'metricsPublic' | 'docsPublic'>): RequestHandler {
  const keys = loadApiKeys(config).map(digest);
  if (keys.length === 0) return (_req, _res, next) => next();
  const open = new Set<string>([...ALWAYS_OPEN, ...(config.metricsPublic ? ['/metrics'] : [])]);
  return (req: Request, _res: Response, next: NextFunction) => {
    if (open.has(req.path) || (config.docsPublic && isDocsPage(req))) return next();
    const key = presentedKey(req);
    if (key !== undefined) {
      const given = digest(key);
      let match = false;
      for (const k of keys) match = timingSafeEqual(given, k) || match;
      if (match) return next();
    }
    next(
      new AppError('UNAUTHORIZED', {
        detail: key === undefined ? 'no API key presented' : 'API key not recognised',
        headers: { 'WWW-Authenticate': 'Bearer' },
      }),
    );
  };
}
