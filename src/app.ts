import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Config } from './config.js';
import { closeEngines, createEngines, type Engines } from './engines/engines.js';
import { AppError } from './errors.js';
import { docsRouter } from './http/docs.js';
import { errorHandler } from './http/errors.js';
import { ImageRequestReader } from './http/image-request.js';
import { handleResource } from './http/resource-handler.js';
import { createLogger } from './logger.js';
import type { AnyResource } from './resources/contract.js';
import { withPlugins } from './resources/plugins.js';
import { builtinResources } from './resources/registry.js';

export interface CreateAppOptions {
  logger?: Logger;
  /** Resources to serve; default: the built-ins. */
  resources?: AnyResource[];
  /** Engines to use; default: created from config (and closed by close()). */
  engines?: Engines;
}

export interface CvServe {
  app: Express;
  config: Config;
  resources: AnyResource[];
  engines: Engines;
  log: Logger;
  /** Closes resources, then engines (worker pools). */
  close(): Promise<void>;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Builds the Express app (without listening): middleware, one route per resource, error mapping. */
export async function createApp(config: Config, options: CreateAppOptions = {}): Promise<CvServe> {
  const log = options.logger ?? createLogger(config);
  const engines = options.engines ?? createEngines(config);
  const resources = options.resources ?? (await withPlugins(builtinResources(), config, log));
  await initResources(resources, { config, engines, log });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.use(
    pinoHttp({
      logger: log,
      genReqId(req: IncomingMessage, res: ServerResponse) {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      // Only what identifies the request: never headers (credentials) or bodies (images).
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url.split('?')[0] }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      customSuccessMessage: (req, res, responseTime) => `${req.method} ${req.url?.split('?')[0]} ${res.statusCode} ${Math.round(responseTime)}ms`,
      customErrorMessage: (req, res) => `${req.method} ${req.url?.split('?')[0]} ${res.statusCode}`,
    }),
  );

  app.all('/ping', methods(['GET']), (_req, res) => {
    res.json({ success: true });
  });

  app.use(docsRouter(resources));

  const reader = new ImageRequestReader(config);
  for (const resource of resources) {
    app.all(`/${resource.name}`, methods(resource.methods ?? ['GET', 'POST']), (req, res, next) => {
      handleResource(resource, req, res, { config, reader }).catch(next);
    });
  }

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new AppError('NOT_FOUND')));
  app.use(errorHandler);

  let closed = false;
  return {
    app,
    config,
    resources,
    engines,
    log,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled(resources.map((r) => r.close()));
      if (!options.engines) await closeEngines(engines);
    },
  };
}

async function initResources(resources: AnyResource[], ctx: Parameters<AnyResource['init']>[0]): Promise<void> {
  const names = new Set<string>();
  for (const r of resources) {
    if (names.has(r.name)) throw new Error(`two resources are named ${r.name}`);
    names.add(r.name);
  }
  await Promise.all(
    resources.map(async (r) => {
      try {
        await r.init(ctx);
      } catch (err) {
        ctx.log.error({ err, resource: r.name }, `resource ${r.name} failed to initialise`);
      }
      const status = r.status();
      if (!status.ready) ctx.log.warn({ resource: r.name, reason: status.reason }, `/${r.name} unavailable: ${status.reason}`);
    }),
  );
}

function methods(allowed: readonly string[]) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (allowed.includes(req.method)) return next();
    next(new AppError('METHOD_NOT_ALLOWED', { headers: { Allow: allowed.join(', ') } }));
  };
}
