import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { pinoHttp } from 'pino-http';
import type { Config } from './config.js';
import type { FaceGalleryService } from './faces/service.js';
import { createDeepstack } from './deepstack/router.js';
import { poolStats } from './engines/engines.js';
import { logWorkerEvents } from './engines/pool-log.js';
import { AppError } from './errors.js';
import { apiKeyAuth } from './http/auth.js';
import { loadApiKeys } from './transport/keys.js';
import { createPipelineServices } from './transport/pipeline-services.js';
import { docsRouter } from './http/docs.js';
import { errorHandler } from './http/errors.js';
import { healthRoutes, Lifecycle } from './http/health.js';
import { ImageRequestReader } from './http/image-request.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { adoptMessageClasses, type MessageClasses } from './http/express-messages.js';
import { withFastPing } from './http/fast-ping.js';
import { requestId } from './http/request-id.js';
import { serveResource } from './http/resource-route.js';
import type { UrlFetchHooks } from './fetch/url-fetch.js';
import { corsPolicy, securityHeaders } from './http/security.js';
import { crossSiteGuard } from './http/cross-site.js';
import { createLogger } from './logger.js';
import { serviceOpenApi } from './openapi-document.js';
import { closeServices, createServices } from './services.js';
import type { AnyResource, ServiceSet } from './resources/contract.js';
import { defineAll, type ResourceDeclaration } from './resources/define.js';
import { withPlugins } from './resources/plugins.js';
import { builtinResources } from './resources/registry.js';

export interface CreateAppOptions {
  logger?: Logger;
  /** Resources to serve (declarations: the app checks and defines them); default: the built-ins and plugins. */
  resources?: ResourceDeclaration<z.ZodObject>[];
  /** Engines to use; default: created from config (and closed by close()). */
  engines?: ServiceSet;
  /** DNS lookup, connect hook and exempt addresses for ?url= downloads (tests: no real network). */
  urlHooks?: UrlFetchHooks;
}

export interface CvServe {
  app: Express;
  /** What the HTTP server runs: the app behind the /ping fast path. */
  handler: RequestListener;
  /** The request and response classes the HTTP server builds for the app (http/express-messages.ts). */
  messageClasses: MessageClasses;
  config: Config;
  resources: AnyResource[];
  engines: ServiceSet;
  /** Face register / list / delete / match (the DeepStack face routes); the same object as `engines.faces`. */
  faces: FaceGalleryService;
  log: Logger;
  /** Draining state: `lifecycle.beginShutdown()` turns /readyz to 503. */
  lifecycle: Lifecycle;
  metrics: Metrics;
  /** Closes resources, then engines (worker pools). */
  close(): Promise<void>;
}


/** Builds the Express app (without listening): middleware, one route per resource, error mapping. */
export async function createApp(config: Config, options: CreateAppOptions = {}): Promise<CvServe> {
  const log = options.logger ?? createLogger(config);
  const requireApiKey = apiKeyAuth(config); // reads the keys file: a bad one fails before any worker starts
  const engines = options.engines ?? createServices(config);
  // From the start: a worker pool that cannot start is logged while the resources initialise.
  const stopWorkerLog = logWorkerEvents(log, () => poolStats(engines));
  const resources = defineAll(options.resources ?? (await withPlugins(builtinResources(), config, log)));
  await initResources(resources, { config, engines, log });
  const services = createPipelineServices(config, engines.decodeBudget, options.urlHooks);
  // The DeepStack / CodeProject.AI dialect over the same resources, plus a detector per other manifest detector (custom models).
  const guard = crossSiteGuard(config);
  const deepstack = createDeepstack({ config, manifest: engines.models.manifest, resources, services, gallery: engines.faces, guard });
  await initResources(deepstack.resources, { config, engines, log });

  const app = express();
  const messageClasses = adoptMessageClasses(app);
  app.disable('x-powered-by');
  // No ETag on res.send answers: Express hashes every body for it (SHA-1 of a 0.5 MB edge map: about
  // 1 ms of main-thread CPU), and answers to posted images are never revalidated. Static files
  // (the playground) keep theirs.
  app.disable('etag');
  app.set('query parser', 'simple');
  const lifecycle = new Lifecycle();
  const metrics = createMetrics({ engines, resources });

  app.use(
    pinoHttp({
      logger: log,
      genReqId(req: IncomingMessage, res: ServerResponse) {
        const given = req.headers['x-request-id'];
        const id = requestId(given);
        res.setHeader('X-Request-Id', id);
        return id;
      },
      // Only what identifies the request: never headers (credentials) or bodies (images).
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url.split('?')[0] }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      // The error handler already logged why; this line only records the request at the same loudness.
      customLogLevel: (_req, res) => (res.statusCode === 500 ? 'error' : res.statusCode === 503 ? 'warn' : 'info'),
      customSuccessMessage: (req, res, responseTime) => `${req.method} ${req.url?.split('?')[0]} ${res.statusCode} ${Math.round(responseTime)}ms`,
      customErrorMessage: (req, res) => `${req.method} ${req.url?.split('?')[0]} ${res.statusCode}`,
      // pino-http makes up an Error (with a stack) for every 5xx: the status says it all; a real fault was logged by the error handler.
      customErrorObject: (_req, _res, _err, value: Record<string, unknown>) => {
        const { err: _made, ...rest } = value;
        return rest;
      },
    }),
  );

  app.use(metrics.observeRequests);
  const security = securityHeaders(config);
  app.use(security);
  app.use(corsPolicy(config));
  app.use(lifecycle.closeConnectionsWhileDraining);
  app.use(healthRoutes({ resources, engines, lifecycle }));
  // Before the key check: the dialect's clients send keys as form fields, and every /v1 error is answered in its shape.
  app.use(deepstack.router);
  app.use(guard);
  app.use(requireApiKey);
  app.get('/metrics', metrics.handler);

  app.all('/ping', methods(['GET']), (_req, res) => {
    res.json({ success: true });
  });

  app.use(docsRouter(resources, serviceOpenApi(resources, { apiKeys: loadApiKeys(config).length > 0, manifest: engines.models.manifest })));

  const reader = new ImageRequestReader(config);
  for (const resource of resources) {
    app.all(`/${resource.name}`, methods(resource.methods ?? ['GET', 'POST']), (req, res, next) => {
      serveResource(resource, req, res, { reader, services, timeoutMs: config.requestTimeoutMs }).catch(next);
    });
  }

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new AppError('NOT_FOUND')));
  app.use(errorHandler);

  let closed = false;
  return {
    app,
    handler: withFastPing(app, { securityHeaders: security, metrics, lifecycle }),
    messageClasses,
    config,
    resources,
    engines,
    faces: engines.faces,
    log,
    lifecycle,
    metrics,
    async close() {
      if (closed) return;
      closed = true;
      metrics.close();
      stopWorkerLog();
      await Promise.allSettled([...resources, ...deepstack.resources].map((r) => r.close()));
      if (!options.engines) await closeServices(engines);
    },
  };
}

async function initResources(resources: AnyResource[], ctx: Parameters<AnyResource['init']>[0]): Promise<void> {
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
