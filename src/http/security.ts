import cors from 'cors';
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import type { Config } from '../config.js';

/**
 * Safe default response headers (helmet), tuned so nothing the service serves breaks:
 * - CSP: scripts and styles only from the service itself (the playground and /docs load theirs as
 *   files; Swagger UI sets inline style attributes), images also from data:/blob: (results shown in
 *   the playground) and http(s): (the input image of a ?url= request shown next to its result).
 *   No upgrade-insecure-requests: the service is often reached over plain HTTP inside a network.
 * - No HSTS: TLS ends at a proxy in front of the service, which owns that policy.
 * - Cross-Origin-Resource-Policy: same-origin unless CORS origins are configured; then result
 *   images may be embedded cross-origin too.
 */
export function securityHeaders(config: Pick<Config, 'corsOrigins'>): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        'img-src': ["'self'", 'data:', 'blob:', 'http:', 'https:'],
        'upgrade-insecure-requests': null,
      },
    },
    strictTransportSecurity: false,
    crossOriginResourcePolicy: { policy: config.corsOrigins.length > 0 ? 'cross-origin' : 'same-origin' },
  });
}

/** Headers a browser client may send to the API, and response headers it may read. */
const ALLOWED_HEADERS = ['Authorization', 'X-API-Key', 'Content-Type', 'Accept', 'X-Request-Id'];
const EXPOSED_HEADERS = ['X-Request-Id', 'Retry-After'];

/**
 * CORS for the configured origins only (a pass-through when none are). Preflights are answered here, before
 * authentication: browsers send them without credentials. `*` allows any origin, without cookies
 * (the API uses header keys, never cookies).
 */
export function corsPolicy(config: Pick<Config, 'corsOrigins'>): RequestHandler {
  const origins = config.corsOrigins;
  if (origins.length === 0) return (_req, _res, next) => next();
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins.map((o) => o.replace(/\/+$/, '').toLowerCase()));
  return cors({
    origin: anyOrigin ? '*' : (origin, callback) => callback(null, origin !== undefined && allowed.has(origin.toLowerCase())),
    methods: ['GET', 'POST'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
}
