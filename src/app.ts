import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Config } from './config.js';
import { closeEngines, createEngines, type Engines } from './engines/engines.js';
import { AppError } from './errors.js';
import { errorHandler, toAppError } from './http/errors.js';
import { ImageRequestReader } from './http/image-request.js';
import { sendResult } from './http/respond.js';
import { openImage } from './image/decode.js';
import { createLogger } from './logger.js';
import type { AnyResource } from './resources/contract.js';
import { builtinResources } from './resources/registry.js';
import { parseParams } from './resources/validate.js';

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
  const resources = options.resources ?? builtinResources();
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

  app.get('/', (_req, res) => {
    res.json({ name: 'cvserve', routes: ['/ping', ...resources.map((r) => `/${r.name}`)] });
  });

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

/**
 * An AbortSignal for one request: aborted when the overall time limit passes or when the client
 * goes away, so queued engine work is dropped.
 */
function requestSignal(res: Response, timeoutMs: number): AbortSignal {
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort(new AppError('REQUEST_TIMEOUT', { detail: 'client went away' }));
  });
  return AbortSignal.any([AbortSignal.timeout(timeoutMs), gone.signal]);
}

function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

async function handleResource(
  resource: AnyResource,
  req: Request,
  res: Response,
  deps: { config: Config; reader: ImageRequestReader },
): Promise<void> {
  const status = resource.status();
  if (!status.ready) throw new AppError('MODEL_UNAVAILABLE', { publicMessage: `/${resource.name} is unavailable: ${status.reason}` });
  const signal = requestSignal(res, deps.config.requestTimeoutMs);
  const work = (async () => {
    const request = await deps.reader.read(req, res, signal);
    const params = parseParams(resource.params, request.fields) as Record<string, unknown>;
    const input = await openImage(await request.load(), { maxPixels: deps.config.maxPixels });
    const result = await resource.run(input, params, { signal, log: req.log });
    signal.throwIfAborted();
    await sendResult(req, res, resource, result, params, input, request.source);
  })();
  work.catch(() => {}); // its failure is reported through the race below, or not at all once the deadline won
  await Promise.race([work, whenAborted(signal)]).catch((err: unknown) => {
    throw toAppError(err);
  });
}
