import { ERRORS, statusWord, type ErrorCode } from '../errors.js';
import { OUTPUT_FORMATS } from '../image/types.js';
import { packageVersion } from '../transport/version.js';

/**
 * The OpenAPI 3.1 document's frame: info, tags, the shared error responses and schemas, security.
 * Each router contributes its own path items (the resources' from their declarations in
 * ./resource-openapi.ts, health, metrics, docs, the DeepStack dialect); this module only assembles.
 */

/** A piece of an OpenAPI document, as plain data. */
export type Doc = Record<string, unknown>;


/** Error codes a resource route can answer with, by HTTP status. NOT_FOUND belongs to unknown routes only. */
function errorCodesByStatus(exclude: readonly ErrorCode[] = ['NOT_FOUND']): Map<number, ErrorCode[]> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, entry] of Object.entries(ERRORS) as [ErrorCode, (typeof ERRORS)[ErrorCode]][]) {
    if (exclude.includes(code)) continue;
    byStatus.set(entry.status, [...(byStatus.get(entry.status) ?? []), code]);
  }
  return new Map([...byStatus].sort((a, b) => a[0] - b[0]));
}

const ERROR_HEADERS: Partial<Record<number, Doc>> = {
  405: { Allow: { description: 'The methods this route accepts.', schema: { type: 'string' } } },
  503: { 'Retry-After': { description: 'Seconds to wait before retrying (when the server is busy).', schema: { type: 'integer' } } },
};

function errorResponse(status: number, codes: ErrorCode[]): Doc {
  const lines = codes.map((c) => `- \`${c}\`: ${ERRORS[c].message}`).join('\n');
  return {
    description: `${statusWord(status)}. Error codes:\n${lines}`,
    ...(ERROR_HEADERS[status] ? { headers: ERROR_HEADERS[status] } : {}),
    content: {
      'application/json': {
        schema: {
          allOf: [{ $ref: '#/components/schemas/Error' }],
          properties: { status: { const: statusWord(status) }, code: { enum: codes } },
        },
        example: { status: statusWord(status), message: ERRORS[codes[0]!].message, code: codes[0] },
      },
    },
  };
}

/** References to the shared error responses (components.responses.ErrorNNN), one per status. */
export function errorResponses(exclude?: readonly ErrorCode[]): Doc {
  const out: Doc = {};
  for (const status of errorCodesByStatus(exclude).keys()) out[String(status)] = { $ref: `#/components/responses/Error${status}` };
  return out;
}

function sharedErrorResponses(): Doc {
  const out: Doc = {};
  for (const [status, codes] of errorCodesByStatus([])) out[`Error${status}`] = errorResponse(status, codes);
  return out;
}

export interface OpenApiOptions {
  /** Whether the service has API keys (default true): without them the document declares no security, so /docs shows no locks and no Authorize button. */
  apiKeys?: boolean;
}

/** The whole OpenAPI 3.1 document around the routers' path items. */
export function buildOpenApi(given: Record<string, Doc>, options: OpenApiOptions = {}): Doc {
  let paths = given;
  const allCodes = Object.keys(ERRORS) as ErrorCode[];
  const apiKeys = options.apiKeys ?? true;
  if (!apiKeys) {
    // No keys: no operation says which ones need none either.
    paths = structuredClone(paths);
    for (const item of Object.values(paths) as Record<string, Doc>[]) for (const op of Object.values(item)) if (op && typeof op === 'object') delete (op as Doc).security;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'cvserve',
      version: packageVersion(),
      description:
        'Computer vision over HTTP: OpenCV (wasm) and ONNX Runtime models. Every image route takes the image four ways ' +
        '(GET `?url=`, multipart field `image`, JSON `imageBase64`, or a raw image/* body) and answers JSON or an image. ' +
        `Errors are always JSON \`{"status", "message", "code"}\`; the codes are: ${allCodes.map((c) => `\`${c}\` (${ERRORS[c].status})`).join(', ')}.`,
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [
      { name: 'resources', description: 'Computer-vision routes, one per resource.' },
      { name: 'service', description: 'The service itself.' },
    ],
    paths,
    components: {
      schemas: {
        Error: {
          type: 'object',
          required: ['status', 'message', 'code'],
          properties: {
            status: { type: 'string', description: 'The HTTP status in words.' },
            message: { type: 'string', description: 'What went wrong, for people.' },
            code: { type: 'string', enum: allCodes, description: 'Stable machine-readable code.' },
          },
        },
        ImageAsJson: {
          type: 'object',
          required: ['imageBase64', 'format'],
          properties: {
            imageBase64: { type: 'string', contentEncoding: 'base64', description: 'The encoded image.' },
            format: { type: 'string', enum: [...OUTPUT_FORMATS] },
          },
        },
        RouteList: {
          type: 'object',
          required: ['name', 'routes'],
          properties: { name: { type: 'string' }, routes: { type: 'array', items: { type: 'string' } } },
        },
      },
      responses: sharedErrorResponses(),
      ...(apiKeys
        ? {
            securitySchemes: {
              bearer: { type: 'http', scheme: 'bearer', description: 'An API key as a bearer token (only when the service has API keys configured).' },
              apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key (only when the service has API keys configured).' },
            },
          }
        : {}),
    },
    // Keys are optional: a service without CVSERVE_API_KEYS needs none.
    ...(apiKeys ? { security: [{}, { bearer: [] }, { apiKey: [] }] } : {}),
  };
}
