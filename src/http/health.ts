import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Doc } from './openapi.js';
import { poolStats, type Engines } from '../engines/engines.js';
import type { AnyResource } from '../resources/contract.js';

/** Whether the service is draining: set once on SIGTERM/SIGINT, never cleared. */
export class Lifecycle {
  private draining = false;

  get shuttingDown(): boolean {
    return this.draining;
  }

  beginShutdown(): void {
    this.draining = true;
  }

  /** While draining, answers close their connection so keep-alive clients reconnect elsewhere. */
  readonly closeConnectionsWhileDraining = (_req: Request, res: Response, next: NextFunction): void => {
    if (this.draining) res.setHeader('Connection', 'close');
    next();
  };
}

/** What keeps the service from serving everything: empty when ready. */
export function missingForReadiness(deps: { resources: readonly AnyResource[]; engines: Engines; lifecycle: Lifecycle }): string[] {
  if (deps.lifecycle.shuttingDown) return ['shutting down'];
  const missing: string[] = [];
  for (const pool of poolStats(deps.engines)) {
    // The startup error itself may name paths: it goes to the log, not to this open endpoint.
    if (!pool.up) missing.push(`worker pool ${pool.name}: ${pool.startupError ? 'workers fail to start' : 'starting'}`);
  }
  for (const resource of deps.resources) {
    const status = resource.status();
    if (!status.ready) missing.push(`/${resource.name}: ${status.reason}`);
  }
  return missing;
}

/**
 * `GET /healthz`: the process is alive and its event loop answers (liveness).
 * `GET /readyz`: every resource is ready (cascades and models loaded) and every worker pool is up;
 * otherwise, and while shutting down, 503 with what is missing (readiness).
 */
export function healthRoutes(deps: { resources: readonly AnyResource[]; engines: Engines; lifecycle: Lifecycle }): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ status: 'ok' });
  });
  router.get('/readyz', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const missing = missingForReadiness(deps);
    if (missing.length === 0) res.json({ status: 'ready' });
    else res.status(503).json({ status: 'not ready', missing });
  });
  return router;
}

/** The health routes' OpenAPI path items. */
export function healthOpenApi(): Record<string, Doc> {
  return {
    '/healthz': {
      get: {
        operationId: 'healthz',
        tags: ['service'],
        summary: 'Liveness: the process and its event loop answer',
        security: [{}],
        responses: { '200': { description: 'Alive.', content: { 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } } } } } },
      },
    },
    '/readyz': {
      get: {
        operationId: 'readyz',
        tags: ['service'],
        summary: 'Readiness: every model and worker pool is up, and the service is not shutting down',
        security: [{}],
        responses: {
          '200': { description: 'Ready.', content: { 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { const: 'ready' } } } } } },
          '503': {
            description: 'Not ready: what is missing, or shutting down.',
            content: {
              'application/json': {
                schema: { type: 'object', required: ['status', 'missing'], properties: { status: { const: 'not ready' }, missing: { type: 'array', items: { type: 'string' } } } },
              },
            },
          },
        },
      },
    },
  };
}
