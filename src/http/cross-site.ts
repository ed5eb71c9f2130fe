import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { ALWAYS_OPEN } from './auth.js';

/**
 * Browser-borne requests the service refuses, keys or not:
 * - a request that changes state (any method but GET, HEAD, OPTIONS) sent by a web page of another
 *   site: `Sec-Fetch-Site: cross-site`, or an `Origin` that is neither this service's own origin nor
 *   one allowed by CVSERVE_CORS_ORIGINS → 403 CROSS_SITE_REQUEST (a LAN service without keys cannot
 *   be made to register or delete faces by a page a resident opens);
 * - with CVSERVE_ALLOWED_HOSTS set, a `Host` not in it → 421 HOST_NOT_ALLOWED (DNS rebinding).
 * Clients that are not browsers send neither `Origin` nor `Sec-Fetch-*` and are not affected; the
 * playground is same-origin.
 */
export function crossSiteGuard(config: Pick<Config, 'corsOrigins' | 'allowedHosts'>): RequestHandler {
  const anyOrigin = config.corsOrigins.includes('*');
  const origins = new Set(config.corsOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()));
  const hosts = new Set(config.allowedHosts.map((h) => hostName(h)));
  const probes = new Set<string>(ALWAYS_OPEN);
  return (req: Request, _res: Response, next: NextFunction) => {
    if (hosts.size > 0 && !probes.has(req.path) && !hosts.has(hostName(req.headers.host ?? ''))) {
      return next(new AppError('HOST_NOT_ALLOWED', { detail: `Host ${JSON.stringify((req.headers.host ?? '').slice(0, 100))} is not in CVSERVE_ALLOWED_HOSTS` }));
    }
    if (SAFE_METHODS.has(req.method)) return next();
    const origin = req.headers.origin;
    const allowedOrigin = origin !== undefined && (anyOrigin || origins.has(origin.toLowerCase()));
    const site = req.headers['sec-fetch-site'];
    // The browser's own word (behind a proxy that rewrites Host), or the Origin naming the Host.
    const sameOrigin = site === 'same-origin' || (origin !== undefined && origin !== 'null' && sameHost(origin, req.headers.host));
    if (site === 'cross-site' && !allowedOrigin) return next(refused(`Sec-Fetch-Site: cross-site, Origin ${origin ?? 'absent'}`));
    if (origin !== undefined && !sameOrigin && !allowedOrigin) return next(refused(`Origin ${origin.slice(0, 100)} is not allowed`));
    next();
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function refused(detail: string): AppError {
  return new AppError('CROSS_SITE_REQUEST', { detail });
}

/** A Host header or host list entry without its port, lower case ("[::1]:8080" → "[::1]"). */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/** Whether an Origin names the host (and port) the request was sent to. */
function sameHost(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    return new URL(origin).host === new URL(`http://${host}`).host;
  } catch {
    return false;
  }
}
