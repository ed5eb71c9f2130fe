import { Transform } from 'node:stream';
import type { Request, Response } from 'express';
import express from 'express';
import multer, { MulterError } from 'multer';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { maxDeclaredBody, refuseBodyBeforeReading, runMiddleware, type Middleware } from '../transport/body.js';
import { toAppError } from '../transport/errors.js';

/** One file of a multipart body, under whatever field name the client gave it. */
export interface DialectFile {
  field: string;
  bytes: Buffer;
}

/** A DeepStack request's body and query, read once. */
export interface DialectRequest {
  /** Parameters: the query string and the form fields (which win), without the keys. */
  fields: Record<string, string>;
  /** Every file part, in order. */
  files: DialectFile[];
  /** Keys in form fields `api_key` / `admin_key` (empty ones left out); never in `fields`, never logged. */
  formKeys: string[];
}

/** Fields that carry credentials: read from the form body only, never passed on as parameters. */
const KEY_FIELDS = new Set(['api_key', 'admin_key']);

/** Requests whose multipart body is being read, and how to stop the read when it passes the limit. */
const overLimit = new WeakMap<Request, (err: Error) => void>();

/** Keys to check a request's form keys against, when its headers brought no valid one. */
export interface PendingKeys {
  accepts(key: string | undefined): boolean;
}

/** A request read before its key is known: the keys to check, and the body bytes it counts against the shared budget. */
interface Unauthenticated {
  keys: PendingKeys;
  counted: number;
}

const unauthenticated = new WeakMap<Request, Unauthenticated>();

/**
 * The DeepStack / CodeProject.AI body reader. Clients send multipart/form-data with the image in
 * field `image` (Home Assistant, Frigate, Node-RED), several files under any names (face register:
 * `image0..N`), or an urlencoded body with only `api_key` (Home Assistant's face list); parameters
 * come from the query string too (as CodeProject.AI merges them). A file's type is never taken from
 * its part header (Home Assistant sends none): the pipeline reads it from the bytes.
 *
 * Limits are the native routes' (CVSERVE_MAX_BODY_BYTES per file, CVSERVE_MAX_FIELDS,
 * CVSERVE_MAX_FIELD_BYTES), and the whole multipart body is held to what one image and its fields
 * may take, whatever number of files it carries, while it streams.
 */
export class DialectReader {
  private readonly multipart: Middleware;
  private readonly urlencoded: Middleware;
  private readonly multipartLimit: number;
  private readonly urlencodedLimit: number;
  /** Most files in one request: a face register call's images (at least 3, so `match` can say "only two"). */
  readonly maxFiles: number;

  /** Body bytes read so far by requests whose key is not known yet, all requests together. */
  private unauthenticatedBytes = 0;

  constructor(private readonly config: Pick<Config, 'maxBodyBytes' | 'maxFields' | 'maxFieldBytes' | 'faceMaxImages' | 'maxUnauthenticatedBodyBytes'>) {
    this.maxFiles = Math.max(3, config.faceMaxImages);
    this.multipartLimit = maxDeclaredBody('multipart/form-data', config);
    this.urlencodedLimit = config.maxFields * config.maxFieldBytes;
    const options = {
      storage: multer.memoryStorage(),
      limits: {
        fileSize: config.maxBodyBytes,
        files: this.maxFiles,
        fields: config.maxFields,
        fieldSize: config.maxFieldBytes,
        parts: config.maxFields + this.maxFiles,
      },
      fileFilter: (req: Request, _file: unknown, accept: (err: null, take: boolean) => void) => accept(null, this.keyBeforeFile(req)),
      // multer 2.5: feeds busboy through a byte counter, so a body of many files stops at the limit.
      streamHandler: (req: Request, busboy: NodeJS.WritableStream & { destroy(err?: Error): void }) => {
        const counter = byteLimit(this.multipartLimit, (bytes) => this.countUnauthenticated(req, bytes));
        counter.once('error', (err) => {
          req.unpipe(counter);
          busboy.destroy(err);
          overLimit.get(req)?.(err);
        });
        req.pipe(counter).pipe(busboy);
      },
    };
    this.multipart = multer(options as multer.Options).any() as Middleware;
    this.urlencoded = express.urlencoded({ extended: false, limit: this.urlencodedLimit, parameterLimit: config.maxFields, type: () => true }) as Middleware;
  }

  /**
   * At the start of each file of a request whose headers had no valid key: a key field already read
   * decides (valid: the request is authenticated; wrong: refused now, 401, nothing more read); no key
   * yet: the file is read, its bytes counted against CVSERVE_MAX_UNAUTHENTICATED_BODY_BYTES.
   */
  private keyBeforeFile(req: Request): boolean {
    const pending = unauthenticated.get(req);
    if (!pending) return true;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const keys = [...KEY_FIELDS].map((k) => body[k]).filter((v): v is string => typeof v === 'string' && v.trim() !== '');
    if (keys.length === 0) return true;
    let match = false;
    for (const key of keys) match = pending.keys.accepts(key.trim()) || match;
    if (match) {
      this.release(req);
      return true;
    }
    overLimit.get(req)?.(unauthorized('API key not recognised'));
    return false;
  }

  private countUnauthenticated(req: Request, bytes: number): Error | undefined {
    const pending = unauthenticated.get(req);
    if (!pending) return undefined;
    pending.counted += bytes;
    this.unauthenticatedBytes += bytes;
    if (this.unauthenticatedBytes <= this.config.maxUnauthenticatedBodyBytes) return undefined;
    return new AppError('QUEUE_FULL', {
      publicMessage:
        'Too many request bodies are being read before their API key is known: send the key in a header (Authorization: Bearer / X-API-Key) or in form field api_key before the files',
      detail: `unauthenticated bodies over CVSERVE_MAX_UNAUTHENTICATED_BODY_BYTES (${this.config.maxUnauthenticatedBodyBytes})`,
      headers: { 'Retry-After': '1' },
    });
  }

  /** The request's key is known (or its read ended): its bytes no longer count. */
  private release(req: Request): void {
    const pending = unauthenticated.get(req);
    if (!pending) return;
    this.unauthenticatedBytes -= pending.counted;
    unauthenticated.delete(req);
  }

  /**
   * Reads the body. `pendingKeys`: the headers brought no valid key, so the form's keys are checked
   * as they arrive (see keyBeforeFile); the caller still checks `formKeys` once the body is read.
   */
  async read(req: Request, res: Response, pendingKeys?: PendingKeys): Promise<DialectRequest> {
    if (!pendingKeys) return this.readBody(req, res);
    unauthenticated.set(req, { keys: pendingKeys, counted: 0 });
    try {
      return await this.readBody(req, res);
    } finally {
      this.release(req);
    }
  }

  private async readBody(req: Request, res: Response): Promise<DialectRequest> {
    const query = firstValues(req.query as Record<string, unknown>, this.config.maxFields, 'query parameters');
    for (const key of KEY_FIELDS) delete query[key];
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type === 'multipart/form-data') {
      refuseBodyBeforeReading(req, res, this.multipartLimit);
      // Over the limit, answer at once (the connection closes): multer would first drain the rest of the body.
      const stopped = new Promise<never>((_, reject) => overLimit.set(req, reject));
      stopped.catch(() => {});
      try {
        await Promise.race([runMiddleware(this.multipart, req, res), stopped]);
      } catch (err) {
        throw readError(err, this.maxFiles, res);
      } finally {
        overLimit.delete(req);
      }
      const files = ((req.files ?? []) as Express.Multer.File[]).map((f) => ({ field: f.fieldname, bytes: f.buffer }));
      return { ...splitKeys(query, (req.body ?? {}) as Record<string, unknown>, this.config.maxFields), files };
    }
    if (type === 'application/x-www-form-urlencoded') {
      refuseBodyBeforeReading(req, res, this.urlencodedLimit);
      try {
        await runMiddleware(this.urlencoded, req, res);
      } catch (err) {
        throw readError(err, this.maxFiles, res);
      }
      return { ...splitKeys(query, (req.body ?? {}) as Record<string, unknown>, this.config.maxFields), files: [] };
    }
    if (type === '') return { fields: query, files: [], formKeys: [] };
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', {
      publicMessage: `Content-Type ${type} is not accepted here: send multipart/form-data (the image in file field "image") or application/x-www-form-urlencoded`,
    });
  }
}

/** Parameters from the form (winning over the query) and the keys, apart. */
function splitKeys(query: Record<string, string>, body: Record<string, unknown>, maxFields: number): Omit<DialectRequest, 'files'> {
  const form = firstValues(body, maxFields, 'form fields');
  const formKeys: string[] = [];
  for (const key of KEY_FIELDS) {
    const value = form[key];
    delete form[key];
    if (value !== undefined && value.trim() !== '') formKeys.push(value.trim());
  }
  return { fields: { ...query, ...form }, formKeys };
}

/**
 * Text values only; a repeated field counts with its first value, as DeepStack's Go server reads
 * them (`PostForm`). Bracketed names that a form parser nests into objects are not parameters here.
 */
function firstValues(fields: Record<string, unknown>, maxFields: number, what: string): Record<string, string> {
  const keys = Object.keys(fields);
  if (keys.length > maxFields) throw new AppError('BAD_PARAMETER', { publicMessage: `Too many ${what} (limit ${maxFields}, CVSERVE_MAX_FIELDS)` });
  const out: Record<string, string> = {};
  for (const key of keys) {
    const value = fields[key];
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') out[key] = first;
  }
  return out;
}

class OverLimit extends Error {}

/** Passes bytes through until more than `limit` came, or `count` refuses them, then fails. */
function byteLimit(limit: number, count: (bytes: number) => Error | undefined): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) return done(new OverLimit(`multipart body over ${limit} bytes`));
      done(count(chunk.length) ?? null, chunk);
    },
  });
}

function unauthorized(detail: string): AppError {
  return new AppError('UNAUTHORIZED', {
    publicMessage: 'A valid API key is required: send it in form field api_key (or as Authorization: Bearer / X-API-Key)',
    detail,
    headers: { 'WWW-Authenticate': 'Bearer' },
  });
}

/** The reader's failures in the registry's terms, with this dialect's wording where the native one would mislead. */
function readError(err: unknown, maxFiles: number, res: Response): AppError {
  if (err instanceof AppError) {
    res.setHeader('Connection', 'close'); // refused mid-body: the rest is not read
    return err;
  }
  if (err instanceof OverLimit) {
    res.setHeader('Connection', 'close');
    return new AppError('PAYLOAD_TOO_LARGE', { publicMessage: 'Request body too large (CVSERVE_MAX_BODY_BYTES)', detail: err.message });
  }
  if (err instanceof MulterError && err.code === 'LIMIT_FILE_COUNT') {
    return new AppError('BAD_MULTIPART', { publicMessage: `At most ${maxFiles} files in one request (CVSERVE_FACE_MAX_IMAGES)` });
  }
  if ((err as { type?: string })?.type === 'parameters.too.many') {
    return new AppError('BAD_PARAMETER', { publicMessage: 'Too many form fields (CVSERVE_MAX_FIELDS)' });
  }
  return toAppError(err);
}
