import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import sharp from 'sharp';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { FaceGalleryService } from '../faces/service.js';
import { apiKeyCheck, presentedKey, type ApiKeyCheck } from '../http/auth.js';
import { logFailure, toAppError } from '../http/errors.js';
import type { Manifest } from '../models/manifest.js';
import type { AnyResource } from '../resources/contract.js';
import { Deadline } from '../resources/deadline.js';
import { executeResource, type Executed, type PipelineServices } from '../resources/pipeline.js';
import { detectionAnswer, faceAnswer, recognizeAnswer, sceneAnswer, sendError, sendJson, type Timings } from './answer.js';
import { alprAnswer, ocrAnswer, regionField } from './text-answer.js';
import { DialectReader, type DialectFile, type DialectRequest } from './request.js';
import { dialectResources, type DialectResources } from './resources.js';
import { ALPR_MIN_CONFIDENCE, DEEPSTACK_ROUTES, DETECTION_MIN_CONFIDENCE, OCR_MIN_CONFIDENCE, FACE_MIN_CONFIDENCE, MIN_CONFIDENCE_FLOOR, RECOGNIZE_MIN_CONFIDENCE, type DeepstackRoute } from './routes.js';
import { cvserveVersion } from './openapi.js';

/**
 * cvserve as a DeepStack / CodeProject.AI server: the third transport over the one pipeline (after
 * the native HTTP routes and the CLI). Each route turns the dialect's request (multipart `image`,
 * `min_confidence`, keys in form fields) into a ResourceRequest for `executeResource`, and the
 * native answer into the dialect's; limits, cost bounds, deadlines, queues and the error registry
 * are the pipeline's and the service's, not repeated here.
 */

/** The face gallery operations the face routes use (the app's `engines.faces`). */
export type DeepstackGallery = Pick<FaceGalleryService, 'register' | 'list' | 'delete' | 'match' | 'status'>;

export interface DeepstackOptions {
  config: Config;
  manifest: Manifest;
  /** The app's resources: the dialect runs the same ones (and adds its custom detectors). */
  resources: readonly AnyResource[];
  services: PipelineServices;
  /** Face register / list / delete / match; without it those routes answer NOT_AVAILABLE. */
  gallery?: DeepstackGallery;
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

/** Resolves once `work` settles, or rejects as soon as `signal` aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * `min_confidence` as DeepStack reads it: a decimal number up to 1, raised to 0.1 when smaller
 * (DeepStack's floor); absent, empty or "NaN" (Node-RED's node sends it when its confidence is
 * unset) is the route's default.
 */
export function minConfidence(fields: Record<string, string>, fallback: number): number {
  const raw = fields.min_confidence?.trim();
  if (raw === undefined || raw === '' || raw.toLowerCase() === 'nan') return fallback;
  const value = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(value)) {
    throw new AppError('BAD_PARAMETER', { publicMessage: `Invalid value for min_confidence: must be a number from 0 to 1 (got ${JSON.stringify(raw.slice(0, 40))})` });
  }
  if (value > 1) throw new AppError('BAD_PARAMETER', { publicMessage: 'min_confidence cannot be greater than 1' });
  return Math.max(MIN_CONFIDENCE_FLOOR, value);
}

const NO_IMAGE = 'No valid image file found: send the image as multipart/form-data file field "image"';

/** The image of a one-image route: field `image`, else the first file (as CodeProject.AI takes it). */
function oneImage(body: DialectRequest): DialectFile {
  const file = body.files.find((f) => f.field === 'image') ?? body.files[0];
  if (!file) throw new AppError('MISSING_IMAGE', { publicMessage: NO_IMAGE });
  return file;
}

function requiredUserid(fields: Record<string, string>): string {
  const userid = (fields.userid ?? fields.userId ?? '').trim();
  if (userid === '') throw new AppError('BAD_PARAMETER', { publicMessage: 'userid not specified' });
  return userid;
}

const ms = (v: number) => Math.round(v);

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
    const { served } = this;
    switch (route.kind) {
      case 'ping':
        return sendJson(res, 200, { success: true });
      case 'update':
        return sendJson(res, 200, updateAnswer());
      case 'detection':
        return this.runResource(route, served.detection, req, res, arrived, {
          params: (f) => ({ labels: 'all', threshold: minConfidence(f, DETECTION_MIN_CONFIDENCE) }),
          answer: (body, t) => detectionAnswer(body, t, 'detect', 'cvserve-detection'),
        });
      case 'custom': {
        const name = String(req.params.model ?? '');
        const resource = this.served.custom.get(name.toLowerCase());
        if (!resource) {
          throw new AppError('NOT_FOUND', { publicMessage: `No custom model named ${JSON.stringify(name.slice(0, 100))}: POST /v1/vision/custom/list lists them` });
        }
        return this.runResource(route, resource, req, res, arrived, {
          params: (f) => ({ labels: 'all', threshold: minConfidence(f, DETECTION_MIN_CONFIDENCE) }),
          answer: (body, t) => detectionAnswer(body, t, 'custom', name.toLowerCase()),
        });
      }
      case 'face':
        return this.runResource(route, served.face, req, res, arrived, {
          params: (f) => ({ minConfidence: minConfidence(f, FACE_MIN_CONFIDENCE) }),
          answer: faceAnswer,
        });
      case 'face-recognize':
        return this.runResource(route, served.recognize, req, res, arrived, {
          params: (f) => ({ minConfidence: minConfidence(f, RECOGNIZE_MIN_CONFIDENCE) }),
          answer: recognizeAnswer,
        });
      case 'scene':
        return this.runResource(route, served.scene, req, res, arrived, { params: () => ({ top: 1 }), answer: sceneAnswer });
      case 'superresolution':
        return this.runResource(route, served.upscale, req, res, arrived, {
          params: () => ({ format: 'png' }),
          image: async (bytes, t) => ({ success: true, imageBase64: bytes.toString('base64'), ...t }),
        });
      case 'enhance':
        return this.runResource(route, served.upscale, req, res, arrived, {
          params: () => ({ format: 'jpeg' }),
          image: async (bytes) => {
            const { width, height } = await sharp(bytes).metadata();
            return { success: true, base64: bytes.toString('base64'), width, height };
          },
        });
      case 'alpr':
        return this.runResource(route, served.alpr, req, res, arrived, {
          params: (f) => ({ minConfidence: minConfidence(f, ALPR_MIN_CONFIDENCE), ...regionField(f) }),
          answer: alprAnswer,
        });
      case 'ocr':
        return this.runResource(route, served.ocr, req, res, arrived, { params: (f) => ({ minConfidence: minConfidence(f, OCR_MIN_CONFIDENCE) }), answer: ocrAnswer });
      case 'custom-list':
        return this.withBody(req, res, async () => ({ success: true, models: [...this.served.custom.keys()], command: 'list', moduleId: 'cvserve-detection' }));
      case 'face-register':
      case 'face-list':
      case 'face-delete':
      case 'face-match':
        return this.gallery(route, req, res);
    }
  }

  /** Whether the headers already carry a valid key (or no key is needed). */
  private headerAuthenticated(req: Request): boolean {
    return !this.keys.required || this.keys.accepts(presentedKey(req));
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

  /** A deadline owned by this request, cancelled when the client goes away. */
  private deadline(res: Response): Deadline {
    const deadline = new Deadline(this.options.config.requestTimeoutMs);
    res.on('close', () => {
      if (!res.writableFinished) deadline.cancel(new AppError('REQUEST_TIMEOUT', { detail: 'client went away' }));
    });
    return deadline;
  }

  private notAvailable(route: DeepstackRoute): AppError {
    return new AppError('NOT_AVAILABLE', { publicMessage: `${route.path} is not available in this version${route.resource ? ` (no /${route.resource} resource)` : ''}` });
  }

  /**
   * One route over one resource, through the pipeline. With keys on and none in the headers, the
   * body is read first (the key is in it) and checked before anything else is answered; otherwise
   * the pipeline reads it once the resource is ready, as for the native routes.
   */
  private async runResource(
    route: DeepstackRoute,
    resource: AnyResource | undefined,
    req: Request,
    res: Response,
    arrived: number,
    how: {
      params: (fields: Record<string, string>) => Record<string, unknown>;
      answer?: (body: Record<string, unknown>, timings: Timings) => Record<string, unknown>;
      image?: (bytes: Buffer, timings: Timings) => Promise<Record<string, unknown>>;
    },
  ): Promise<void> {
    if (!resource) throw this.notAvailable(route);
    const deadline = this.deadline(res);
    let reading: Promise<DialectRequest> | undefined;
    const read = () => (reading ??= this.reader.read(req, res));
    let executed: Executed;
    const started = performance.now();
    try {
      if (!this.headerAuthenticated(req)) this.checkFormKeys(await untilAborted(read(), deadline.signal));
      executed = await executeResource(
        resource,
        {
          accept: '',
          open: async () => {
            const body = await read();
            const params = how.params(body.fields);
            return { fields: params, image: { way: 'multipart', bytes: oneImage(body).bytes } };
          },
        },
        this.options.services,
        { deadline, log: req.log },
      );
    } finally {
      deadline.clear();
    }
    if (executed.cache) res.setHeader('X-Cache', executed.cache);
    const now = performance.now();
    const timings: Timings = { inferenceMs: ms(executed.runMs ?? 0), processMs: ms(now - started), analysisRoundTripMs: ms(now - arrived) };
    const { answer } = executed;
    if (answer.kind === 'json' && how.answer) return sendJson(res, 200, how.answer(answer.body, timings));
    if (answer.kind === 'image' && how.image) return sendJson(res, 200, await how.image(answer.bytes, timings));
    throw new AppError('INTERNAL', { detail: `${route.path}: /${resource.name} answered ${answer.kind}, not what the dialect maps` });
  }

  /** A route without a resource: read the body (for the key), then answer under the request's deadline. */
  private async withBody(req: Request, res: Response, work: (body: DialectRequest, signal: AbortSignal) => Promise<Record<string, unknown>>): Promise<void> {
    const deadline = this.deadline(res);
    const answer = await deadline.run(async (signal) => {
      const body = await this.reader.read(req, res);
      if (!this.headerAuthenticated(req)) this.checkFormKeys(body);
      return work(body, signal);
    });
    sendJson(res, 200, answer);
  }

  /** Face register / list / delete / match, on the face gallery service. */
  private gallery(route: DeepstackRoute, req: Request, res: Response): Promise<void> {
    const gallery = this.options.gallery;
    if (!gallery) throw this.notAvailable(route);
    return this.withBody(req, res, async (body, signal) => {
      const status = gallery.status();
      if (!status.ready) throw new AppError('GALLERY_UNAVAILABLE', { publicMessage: `The face routes are unavailable: ${status.reason}` });
      switch (route.kind) {
        case 'face-register': {
          const userid = requiredUserid(body.fields);
          if (body.files.length === 0) throw new AppError('MISSING_IMAGE', { publicMessage: 'No valid image file found: send one or more image files with the userid' });
          const result = await gallery.register(userid, body.files, signal);
          return { success: true, message: result.added > 0 ? 'face added' : 'face already registered', ...result };
        }
        case 'face-list': {
          const users = await gallery.list();
          return { success: true, faces: users.map((u) => u.userid), users };
        }
        case 'face-delete': {
          const { deleted } = await gallery.delete(requiredUserid(body.fields));
          return { success: true, deleted };
        }
        default: {
          const { files } = body;
          if (files.length === 0) throw new AppError('MISSING_IMAGE', { publicMessage: 'No valid image file found: send two image files' });
          if (files.length === 1) throw new AppError('BAD_PARAMETER', { publicMessage: 'expected two image files, only one found' });
          if (files.length > 2) throw new AppError('BAD_PARAMETER', { publicMessage: 'only two images allowed' });
          const { similarity } = await gallery.match(files[0]!.bytes, files[1]!.bytes, signal);
          return { success: true, similarity };
        }
      }
    });
  }
}

/** The update check Blue Iris makes: answered here, nothing fetched; the current version is the latest. */
function updateAnswer(): Record<string, unknown> {
  const version = cvserveVersion();
  const [major = 0, minor = 0, patch = 0] = version.split(/[.+-]/).map(Number);
  const info = { major, minor, patch, preRelease: null, securityUpdate: false, build: 0, file: null, releaseNotes: null };
  return { success: true, message: 'This is the current version', version: null, current: info, latest: info, updateAvailable: false };
}

