import { AppError } from '../errors.js';

const DATA_URL_PREFIX = /^data:[\w.+-]+\/[\w.+-]+(;[\w-]+=[\w.-]+)*;base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Strict base64 (or base64url) decoding for `imageBase64`. Accepts a `data:image/...;base64,`
 * prefix (browser canvases send it) and line breaks/whitespace (MIME-wrapped base64); refuses
 * anything else instead of letting Buffer.from silently skip garbage.
 */
export function decodeBase64Image(value: string): Buffer {
  const body = value.replace(DATA_URL_PREFIX, '').replace(/\s+/g, '');
  if (body.length === 0) throw new AppError('INVALID_BASE64', { publicMessage: 'imageBase64 is empty' });
  const valid = (BASE64.test(body) || BASE64URL.test(body)) && body.length % 4 !== 1;
  if (!valid) throw new AppError('INVALID_BASE64');
  return Buffer.from(body, BASE64.test(body) ? 'base64' : 'base64url');
}
