import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Manifest } from '../models/manifest.js';
import type { AnyResource } from '../resources/contract.js';
import type { PipelineServices } from '../resources/pipeline.js';
import { logFailure, toAppError } from '../transport/errors.js';
import { executeForRequest, requestDeadline } from '../transport/execute.js';
import { apiKeyCheck, presentedKey, type ApiKeyCheck } from '../transport/keys.js';
import { sendError, sendJson, type Timings } from './answer.js';
import { oneImage } from './fields.js';
import type { DeepstackGallery } from './gallery-actions.js';
import { DialectReader, type DialectRequest } from './request.js';
import { dialectResources, type DialectResources } from './resources.js';
import { DEEPSTACK_ROUTES, type DeepstackRoute, type RouteAction, type RouteContext } from './routes.js';

/**
 * cvserve as a DeepStack / CodeProject.AI server: a transport beside native HTTP and the CLI over
 * the one pipeline. The router mounts the route table (./routes.ts); each request becomes a
 * ResourceRequest for the pipeline, or work on its body, and the answer the dialect's. Limits,
 * cost bounds, deadlines, queues and the error registry are the pipeline's and the service's.
 */

export type { DeepstackGallery } from './gallery-actions.js';
export { minConfidence } from './fields.js';

export interface DeepstackOptions {
  config: Config;
  manifest: Manifest;
  /** The app's resources: the dialect runs the same ones (and adds its custom detectors). */
  resources: readonly AnyResource[];
  services: PipelineServices;
  /** Face register / list / delete / match; without it those routes answer NOT_AVAILABLE. */
  gallery?: DeepstackGallery;
  /** Runs before every dialect route (the cross-site and host checks), its refusals answered in the dialect. */
  guard?: RequestHandler;
}

export interface Deepstack {
  /** Mount before the API-key middleware: these routes take keys from form fields too and answer every error in the dialect. */
  router: Router;
  /** Resources only the dialect uses (custom detectors, a scene classifier): initialise and close them with the app's. */
  resources: AnyResource[];
}

const DIALECT_PATH = /^\/v1(\/|$)/i;

export function createDeepstack(options: DeepstackOptions): Deepstack {
  const served = dialectResources(options.manifest, options.resources);
  const handler = new DialectHandler(options, served);
  const router = express.Router({ caseSensitive: false, strict: false });
  const { guard } = options;
  if (guard) router.use((req, res, next) => (DIALECT_PATH.test(req.path) ? guard(req, res, next) : next()));
  for (const route of DEEPSTACK_ROUTES) {
    for (const path of [route.path, ...(route.aliases ?? [])]) {
      router.all(path, (req, res, next) => {
        handler.handle(route, req, res).catch(next);
      });
    }
  }
  router.use((req: Request, _res: Response, next: NextFunction) => {
    if (!DIALECT_PATH.test(req.path)) return next();
    next(new AppError('NOT_FOUND', { publicMessage: `No DeepStack route ${req.method} ${req.path}; the routes are listed in /docs` }));
  });
  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (!DIALECT_PATH.test(req.path)) return next(err);
    const appError = toAppError(err);
    logFailure(req.log, err, appError);
    sendError(res, appError);
  });
  return { router, resources: served.own };
}

const ms = (v: number) => Math.round(v);

type ResourceAction = Extract<RouteAction, { run: 'resource' }>;
type BodyAction = Extract<RouteAction, { run: 'body' }>;

class DialectHandler {
  private readonly keys: ApiKeyCheck;
  private readonly reader: DialectReader;

  constructor(
    private readonly options: DeepstackOptions,
    private readonly served: DialectResources,
  ) {
    this.keys = apiKeyCheck(options.config);
    this.reader = new DialectReader(options.config);
  }

  async handle(route: DeepstackRoute, req: Request, res: Response): Promise<void> {
    const arrived = performance.now();
    const allowed = route.methods.includes('GET') ? [...route.methods, 'HEAD'] : route.methods;
    if (!allowed.includes(req.method as 'GET')) throw new AppError('METHOD_NOT_ALLOWED', { headers: { Allow: route.methods.join(', ') } });
    const ctx: RouteContext = { path: req.params as Record<string, string>, served: this.served, gallery: this.options.gallery };
    const { action } = route;
    if (action.run === 'static') return sendJson(res, 200, action.answer());
    if (action.run === 'body') return this.withBody(action, ctx, req, res);
    return this.runResource(route, action, ctx, req, res, arrived);
  }

  /** Whether the headers already carry a valid key (or no key is needed). */
  private headerAuthenticated(req: Request): boolean {
    return !this.keys.required || this.keys.accepts(presentedKey(req));
  }

  /**
   * The keys the body's form keys are checked against as it is read, when the headers brought no
   * valid key. A key in a header that is wrong is refused here, before any of the body is read.
   */
  private pendingKeys(req: Request): ApiKeyCheck | undefined {
    if (this.headerAuthenticated(req)) return undefined;
    if (presentedKey(req) !== undefined) {
      throw new AppError('UNAUTHORIZED', {
        publicMessage: 'A valid API key is required: send it in form field api_key (or as Authorization: Bearer / X-API-Key)',
        detail: 'API key in a header not recognised',
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    return this.keys;
  }

  /** The form's `api_key` / `admin_key` (either, constant-time against every key), when the headers had none. */
  private checkFormKeys(body: DialectRequest): void {
    let match = false;
    for (const key of body.formKeys) match = this.keys.accepts(key) || match;
    if (match) return;
    throw new AppError('UNAUTHORIZED', {
      publicMessage: 'A valid API key is required: send it in form field api_key (or as Authorization: Bearer / X-API-Key)',
      detail: body.formKeys.length === 0 ? 'no API key presented' : 'API key not recognised',
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  }

  /**
   * One route over one resource, through the pipeline. With keys on and none in the headers, the
   * body is read first (the key is in it) and checked before anything else is answered; otherwise
   * the pipeline reads it once the resource is ready, as for the native routes.
   */
  private async runResource(route: DeepstackRoute, action: ResourceAction, ctx: RouteContext, req: Request, res: Response, arrived: number): Promise<void> {
    const resource = action.resource(ctx);
    if (!resource) {
      throw new AppError('NOT_AVAILABLE', { publicMessage: `${route.path} is not available in this version${route.resource ? ` (no /${route.resource} resource)` : ''}` });
    }
    const pendingKeys = this.pendingKeys(req);
    let reading: Promise<DialectRequest> | undefined;
    const read = () => (reading ??= this.reader.read(req, res, pendingKeys));
    const started = performance.now();
    const executed = await executeForRequest(
      resource,
      {
        accept: '',
        open: async () => {
          const body = await read();
          return { fields: action.params(body.fields), image: { way: 'multipart', bytes: oneImage(body).bytes } };
        },
      },
      this.options.services,
      {
        res,
        log: req.log,
        timeoutMs: this.options.config.requestTimeoutMs,
        authorize: this.headerAuthenticated(req) ? undefined : async () => this.checkFormKeys(await read()),
      },
    );
    if (executed.cache) res.setHeader('X-Cache', executed.cache);
    const now = performance.now();
    const timings: Timings = { inferenceMs: ms(executed.runMs ?? 0), processMs: ms(now - started), analysisRoundTripMs: ms(now - arrived) };
    sendJson(res, 200, await action.answer(executed.answer, timings, ctx));
  }

  /** Work on the body (read first, for the key), under the request's deadline. */
  private async withBody(action: BodyAction, ctx: RouteContext, req: Request, res: Response): Promise<void> {
    const pendingKeys = this.pendingKeys(req);
    const deadline = requestDeadline(res, this.options.config.requestTimeoutMs);
    const answer = await deadline.run(async (signal) => {
      const body = await this.reader.read(req, res, pendingKeys);
      if (!this.headerAuthenticated(req)) this.checkFormKeys(body);
      return action.answer(body, signal, ctx);
    });
    sendJson(res, 200, answer);
  }
}
