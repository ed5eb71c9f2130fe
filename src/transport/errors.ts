import type { Logger } from 'pino';
import { MulterError } from 'multer';
import { AppError, isAppError } from '../errors.js';

/** Maps whatever was thrown (ours, body-parser's, multer's, anything) to an AppError. */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  if (err instanceof MulterError) {
    switch (err.code) {
      case 'LIMIT_FILE_SIZE':
        return new AppError('PAYLOAD_TOO_LARGE', { detail: err.message });
      case 'LIMIT_FIELD_VALUE':
        return new AppError('PAYLOAD_TOO_LARGE', { publicMessage: `Form field ${err.field ?? ''} is too large`.replace('  ', ' ') });
      case 'LIMIT_FILE_COUNT':
      case 'LIMIT_UNEXPECTED_FILE':
        return new AppError('BAD_MULTIPART', { publicMessage: 'Send exactly one file, in multipart field "image"' });
      case 'LIMIT_FIELD_COUNT':
      case 'LIMIT_PART_COUNT':
        return new AppError('BAD_MULTIPART', { publicMessage: 'Too many form fields' });
      default:
        return new AppError('BAD_MULTIPART', { detail: err.message });
    }
  }
  const e = err as { type?: string; status?: number; message?: string; code?: string; name?: string };
  switch (e?.type) {
    case 'entity.too.large':
      return new AppError('PAYLOAD_TOO_LARGE', { detail: e.message });
    case 'entity.parse.failed':
      return new AppError('INVALID_JSON', { detail: e.message });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('UNSUPPORTED_MEDIA_TYPE', { publicMessage: 'Unsupported body encoding or charset', detail: e.message });
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new AppError('BAD_MULTIPART', { publicMessage: 'The request body was incomplete', detail: e.message });
  }
  // busboy (under multer) reports malformed multipart bodies as plain Errors.
  if (typeof e?.message === 'string' && /multipart|boundary|unexpected end of form|malformed part header/i.test(e.message)) {
    return new AppError('BAD_MULTIPART', { detail: e.message });
  }
  if (e?.name === 'TimeoutError') return new AppError('REQUEST_TIMEOUT', { cause: err });
  // Express decoding a path parameter with a bad percent-encoding (e.g. %E0%A4%A): the client's mistake.
  if (err instanceof URIError && e.status === 400) return new AppError('MALFORMED_REQUEST', { publicMessage: 'The path has an invalid percent-encoding', detail: e.message });
  return new AppError('INTERNAL', { detail: e?.message ?? String(err), cause: err });
}

/**
 * How loud an error is in the log: only a fault of the service (500) is an error, with its stack;
 * the service being busy, starting or stopping (503) is a warning; everything the client caused or
 * controls (4xx, a URL that fails or times out, a request over its deadline) is information.
 */
export function logLevelOf(err: AppError): 'error' | 'warn' | 'info' {
  if (err.status === 500) return 'error';
  return err.status === 503 ? 'warn' : 'info';
}

/** Logs a failed request at its loudness: a fault with its stack, a refusal with its code and detail only. */
export function logFailure(log: Logger | undefined, err: unknown, appError: AppError): void {
  const level = logLevelOf(appError);
  if (level === 'error') log?.error({ err, code: appError.code, detail: appError.detail }, 'request failed');
  else log?.[level]({ code: appError.code, detail: appError.detail }, `request refused: ${appError.code}`);
}
