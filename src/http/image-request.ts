import type { Request, Response } from 'express';
import express from 'express';
import multer from 'multer';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { ImageRef } from '../resources/pipeline.js';
import { maxDeclaredBody, refuseBodyBeforeReading, runMiddleware, type Middleware } from '../transport/body.js';
import { decodeBase64Image } from './base64.js';

export interface ImageRequest {
  /** Where the image is; a ?url= is fetched by the pipeline once the parameters are valid. */
  image: ImageRef;
  /** Parameters: the query string, plus form or JSON fields (which win over the query). */
  fields: Record<string, unknown>;
}

/**
 * The one place every image route reads its image, four ways:
 * GET ?url=, multipart field `image`, JSON {"imageBase64"}, raw image/* (or octet-stream) body.
 * Body size is enforced while streaming by the parsers; the type is decided later from the bytes.
 */
export class ImageRequestReader {
  private readonly multipart: Middleware;
  private readonly json: Middleware;
  private readonly raw: Middleware;

  constructor(private readonly config: Config) {
    this.multipart = multer({
      storage: multer.memoryStorage(),
      limits: {
        fileSize: config.maxBodyBytes,
        files: 1,
        fields: config.maxFields,
        fieldSize: config.maxFieldBytes,
        parts: config.maxFields + 1,
      },
    }).any() as Middleware;
    this.json = express.json({ limit: config.maxBodyBytes, strict: true, type: () => true }) as Middleware;
    this.raw = express.raw({ limit: config.maxBodyBytes, type: () => true }) as Middleware;
  }

  async read(req: Request, res: Response): Promise<ImageRequest> {
    const query = queryFields(req, this.config.maxFields);
    if (req.method === 'GET' || req.method === 'HEAD') {
      const { url, ...fields } = query;
      if (typeof url !== 'string' || url === '') {
        throw new AppError('MISSING_IMAGE', { publicMessage: 'Parameter url is not present: GET needs ?url=http(s)://...' });
      }
      return { image: { way: 'url', url }, fields };
    }

    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    refuseBeforeReading(req, res, type, this.config);
    if (type === 'multipart/form-data') return this.readMultipart(req, res, query);
    if (type === 'application/json' || type.endsWith('+json')) return this.readJson(req, res, query);
    if (type.startsWith('image/') || type === 'application/octet-stream') {
      await runMiddleware(this.raw, req, res);
      const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      return { image: { way: 'raw', bytes }, fields: query };
    }
    if (type === '') {
      throw new AppError('MISSING_IMAGE');
    }
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', {
      publicMessage: `Content-Type ${type} is not accepted: use multipart/form-data (field "image"), application/json ({"imageBase64"}) or image/*`,
    });
  }

  private async readMultipart(req: Request, res: Response, query: Record<string, unknown>): Promise<ImageRequest> {
    await runMiddleware(this.multipart, req, res);
    const files = (req.files ?? []) as Express.Multer.File[];
    const file = files.find((f) => f.fieldname === 'image');
    if (!file) {
      const names = files.map((f) => `"${f.fieldname}"`).join(', ');
      throw new AppError('MISSING_IMAGE', {
        publicMessage: names
          ? `Expected the image in multipart field "image", got ${names}`
          : 'Parameter image is not present: send the file in multipart field "image"',
      });
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    return { image: { way: 'multipart', bytes: file.buffer }, fields: { ...query, ...singleValues(body) } };
  }

  private async readJson(req: Request, res: Response, query: Record<string, unknown>): Promise<ImageRequest> {
    await runMiddleware(this.json, req, res);
    const body = req.body as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new AppError('INVALID_JSON', { publicMessage: 'JSON body must be an object like {"imageBase64": "..."}' });
    }
    const { imageBase64, ...fields } = body as Record<string, unknown>;
    if (imageBase64 === undefined) {
      throw new AppError('MISSING_IMAGE', { publicMessage: 'Parameter imageBase64 is not present in the JSON body' });
    }
    if (typeof imageBase64 !== 'string') throw new AppError('INVALID_BASE64', { publicMessage: 'imageBase64 must be a string' });
    if (Object.keys(fields).length > this.config.maxFields) {
      throw new AppError('BAD_PARAMETER', { publicMessage: `Too many fields (limit ${this.config.maxFields})` });
    }
    const bytes = decodeBase64Image(imageBase64);
    return { image: { way: 'json', bytes }, fields: { ...query, ...fields } };
  }
}

/** The body refusals of every transport, at this request type's limit. */
function refuseBeforeReading(req: Request, res: Response, type: string, config: Config): void {
  refuseBodyBeforeReading(req, res, maxDeclaredBody(type, config));
}

function queryFields(req: Request, maxFields: number): Record<string, unknown> {
  const query = req.query as Record<string, unknown>;
  if (Object.keys(query).length > maxFields) {
    throw new AppError('BAD_PARAMETER', { publicMessage: `Too many query parameters (limit ${maxFields})` });
  }
  return singleValues(query);
}

/** Every parameter given at most once: a repeated key is an error, not a silent pick. */
function singleValues(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (Array.isArray(value)) throw new AppError('BAD_PARAMETER', { publicMessage: `Parameter ${key} was given more than once` });
    out[key] = value;
  }
  return out;
}
