import { AppError } from '../errors.js';
import type { DialectFile, DialectRequest } from './request.js';

/** DeepStack raises any smaller min_confidence to this (`process.py:50`). */
export const MIN_CONFIDENCE_FLOOR = 0.1;

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
export function oneImage(body: DialectRequest): DialectFile {
  const file = body.files.find((f) => f.field === 'image') ?? body.files[0];
  if (!file) throw new AppError('MISSING_IMAGE', { publicMessage: NO_IMAGE });
  return file;
}

export function requiredUserid(fields: Record<string, string>): string {
  const userid = (fields.userid ?? fields.userId ?? '').trim();
  if (userid === '') throw new AppError('BAD_PARAMETER', { publicMessage: 'userid not specified' });
  return userid;
}
