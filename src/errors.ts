/**
 * The one table of errors the service can answer with. Each entry has a stable machine-readable
 * code, an HTTP status and a public message. Internal detail (what actually went wrong) travels
 * separately in `AppError.detail` and goes to the log only, never to the client.
 */
export const ERRORS = {
  BAD_PARAMETER: { status: 400, message: 'Invalid parameter' },
  MISSING_IMAGE: { status: 400, message: 'No image given: use ?url=, multipart field "image", JSON {"imageBase64"} or a raw image/* body' },
  INVALID_BASE64: { status: 400, message: 'imageBase64 is not valid base64' },
  INVALID_JSON: { status: 400, message: 'Request body is not valid JSON' },
  BAD_MULTIPART: { status: 400, message: 'Malformed multipart request' },
  INVALID_URL: { status: 400, message: 'url must be an absolute http(s) URL' },
  UNAUTHORIZED: { status: 401, message: 'A valid API key is required' },
  FORBIDDEN_ADDRESS: { status: 403, message: 'The URL resolves to an address that is not allowed' },
  MALFORMED_REQUEST: { status: 400, message: 'Malformed HTTP request' },
  NOT_FOUND: { status: 404, message: 'Route not found' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed for this route' },
  CLIENT_TIMEOUT: { status: 408, message: 'The request was not received in time' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Request body too large' },
  IMAGE_TOO_LARGE: { status: 413, message: 'Image has too many pixels' },
  OUTPUT_TOO_LARGE: { status: 413, message: 'The result would have too many pixels' },
  WORK_TOO_LARGE: { status: 413, message: 'This image and these parameters would need more work than the server allows' },
  DOWNLOAD_TOO_LARGE: { status: 413, message: 'The image at the URL is too large' },
  UNSUPPORTED_ENCODING: { status: 415, message: 'Compressed request bodies (Content-Encoding) are not accepted: send the body as is' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported image type: send JPEG, PNG, WebP, GIF, TIFF or AVIF' },
  UNDECODABLE_IMAGE: { status: 422, message: 'The image could not be decoded' },
  EXPECTATION_FAILED: { status: 417, message: 'Only Expect: 100-continue is supported' },
  HEADERS_TOO_LARGE: { status: 431, message: 'Request line or headers too large' },
  INTERNAL: { status: 500, message: 'Internal server error' },
  URL_FETCH_FAILED: { status: 502, message: 'Could not fetch the image URL' },
  QUEUE_FULL: { status: 503, message: 'Server busy, try again shortly' },
  ENGINE_FAILED: { status: 503, message: 'The worker running this request failed and is being replaced; try again' },
  MODEL_UNAVAILABLE: { status: 503, message: 'This route is not available: its model is missing' },
  SHUTTING_DOWN: { status: 503, message: 'Server is shutting down' },
  URL_FETCH_TIMEOUT: { status: 504, message: 'Fetching the image URL timed out' },
  REQUEST_TIMEOUT: { status: 504, message: 'The request took too long' },
  GALLERY_FULL: { status: 409, message: 'The face gallery is full: delete users or photos first' },
  GALLERY_UNAVAILABLE: { status: 503, message: 'The face gallery database is unavailable, try again shortly' },
  GALLERY_STORAGE_FULL: { status: 507, message: "The face gallery's disk is full: nothing was stored; free space where the database keeps its files, then retry" },
  CROSS_SITE_REQUEST: { status: 403, message: 'Cross-site request refused: this route changes state and the request came from another site (allow its origin in CVSERVE_CORS_ORIGINS)' },
  HOST_NOT_ALLOWED: { status: 421, message: 'This Host is not served here (CVSERVE_ALLOWED_HOSTS)' },
  NO_FACE: { status: 400, message: 'No face found in image' },
  NOT_AVAILABLE: { status: 501, message: 'Not available in this version' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** A status word per HTTP status, for the `status` field of the error body. */
const STATUS_WORDS: Record<number, string> = {
  400: 'bad request', 401: 'unauthorized', 403: 'forbidden', 404: 'not found', 405: 'method not allowed', 408: 'request timeout', 409: 'conflict',
  413: 'payload too large', 421: 'misdirected request', 415: 'unsupported media type', 417: 'expectation failed', 422: 'unprocessable entity', 431: 'request header fields too large',
  500: 'internal error', 501: 'not implemented', 502: 'bad gateway', 503: 'service unavailable', 504: 'gateway timeout', 507: 'insufficient storage',
};

export function statusWord(status: number): string {
  return STATUS_WORDS[status] ?? 'error';
}

export interface AppErrorOptions {
  /** Replaces the table's public message when the client must know more (e.g. which parameter). */
  publicMessage?: string;
  /** Internal detail for the log only. */
  detail?: string;
  /** Extra response headers, e.g. Retry-After or Allow. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly publicMessage: string;
  readonly detail?: string;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    const entry = ERRORS[code];
    super(options.detail ?? options.publicMessage ?? entry.message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = entry.status;
    this.publicMessage = options.publicMessage ?? entry.message;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** The JSON body every error answers with. */
export function errorBody(err: AppError): { status: string; message: string; code: ErrorCode } {
  return { status: statusWord(err.status), message: err.publicMessage, code: err.code };
}

/** The README's error table, as Markdown: every code with its status and public message, by status. */
export function errorTable(): string {
  const rows = (Object.entries(ERRORS) as [ErrorCode, (typeof ERRORS)[ErrorCode]][])
    .sort((a, b) => a[1].status - b[1].status)
    .map(([code, e]) => `| ${e.status} | \`${code}\` | ${e.message.replace(/\|/g, '\\|')} |`);
  return ['| status | code | message |', '|---|---|---|', ...rows].join('\n');
}
