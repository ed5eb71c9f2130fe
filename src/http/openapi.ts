import { readFileSync } from 'node:fs';
import { ERRORS, statusWord, type ErrorCode } from '../errors.js';
import { INPUT_FORMATS, OUTPUT_FORMATS } from '../image/types.js';
import type { AnyResource } from '../resources/contract.js';
import { describeParams, outputSchema, type JsonSchema, type ParamDescription } from '../resources/describe.js';
import { ROUTE_INFO_KEY, type CvServeRouteInfo } from '../web/route-info.js';

/**
 * The OpenAPI 3.1 document, generated from the resources' own declarations (the zod schemas that
 * validate requests), so a new resource, built-in or plugin, is documented with no extra work.
 * Each resource route gets its four input ways, its parameters with types, defaults and bounds,
 * each answer it can give, and every error code with its status.
 */

type Doc = Record<string, unknown>;

/** What the playground needs beyond plain OpenAPI, on each resource's path item (declared where browsers can load it). */
export { ROUTE_INFO_KEY, type CvServeRouteInfo };

const binary = { type: 'string', format: 'binary', contentMediaType: 'application/octet-stream' };
const imageTypes = OUTPUT_FORMATS.map((f) => `image/${f}`);

function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cvserve' && pkg.version) return pkg.version;
    } catch {
      // not at this level (src/ vs dist/src/)
    }
  }
  return '0.0.0';
}

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
function errorResponses(exclude?: readonly ErrorCode[]): Doc {
  const out: Doc = {};
  for (const status of errorCodesByStatus(exclude).keys()) out[String(status)] = { $ref: `#/components/responses/Error${status}` };
  return out;
}

function sharedErrorResponses(): Doc {
  const out: Doc = {};
  for (const [status, codes] of errorCodesByStatus([])) out[`Error${status}`] = errorResponse(status, codes);
  return out;
}

function queryParameter(p: ParamDescription, required = false): Doc {
  const schema = { ...p.schema };
  delete schema.description;
  return {
    name: p.name,
    in: 'query',
    required,
    description: p.description,
    schema,
    // Lists travel comma-separated: ?labels=cat,dog
    ...(schema.type === 'array' ? { style: 'form', explode: false } : {}),
  };
}

/**
 * The multipart body: the file only. Swagger UI's Try it out fills every form property with a sample
 * from its schema (an optional `maxSide` became its minimum, 32, and found no faces), while query
 * parameters it leaves empty unless they have a default. So the parameters are documented once, as
 * the operation's query parameters; the service also takes them as form fields of the same names.
 */
function multipartSchema(): Doc {
  return {
    type: 'object',
    required: ['image'],
    properties: { image: { ...binary, description: `The image file (${INPUT_FORMATS.join(', ')}; the type is read from the bytes).` } },
  };
}

/** A JSON body Try it out can send as offered (an 8×8 gray PNG), instead of a sample with every field set to its minimum. */
const JSON_BODY_EXAMPLE = {
  imageBase64: 'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAD0lEQVQImWNowAEYhpYEAILzYAEeEbvlAAAAAElFTkSuQmCC',
};

function bodySchema(imageField: 'image' | 'imageBase64', params: ParamDescription[]): Doc {
  const image =
    imageField === 'image'
      ? { ...binary, description: `The image file (${INPUT_FORMATS.join(', ')}; the type is read from the bytes).` }
      : { type: 'string', contentEncoding: 'base64', description: 'The image as base64 (a data:image/...;base64, prefix is accepted).' };
  return {
    type: 'object',
    required: [imageField, ...params.filter((p) => p.required).map((p) => p.name)],
    properties: { [imageField]: image, ...Object.fromEntries(params.map((p) => [p.name, p.schema])) },
    additionalProperties: false,
  };
}

function successResponse(resource: AnyResource): Doc {
  const output = resource.output;
  const imageContent = Object.fromEntries(imageTypes.map((t) => [t, { schema: binary }]));
  if (output.kind === 'image') {
    return {
      description:
        'The result image, as bytes in the format asked for (`format`, or an image type in Accept). ' +
        'JSON requests (and Accept: application/json) get `{"imageBase64", "format"}` instead.',
      content: { ...imageContent, 'application/json': { schema: { $ref: '#/components/schemas/ImageAsJson' } } },
    };
  }
  const alternatives = [
    output.drawable ? 'the input image with the results drawn on it (`draw=true`, or an image type in Accept)' : '',
    output.rendersImage ? 'an image rendering of the result when the client prefers an image' : '',
  ].filter(Boolean);
  return {
    description: `The result as JSON${alternatives.length ? `, or ${alternatives.join(', or ')}` : ''}.`,
    content: {
      'application/json': { schema: outputSchema(output.schema) },
      ...(alternatives.length ? imageContent : {}),
    },
  };
}

function operationId(name: string, suffix = ''): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()) + suffix;
}

function resourcePath(resource: AnyResource): Doc {
  const params = describeParams(resource.params);
  const methods = resource.methods ?? ['GET', 'POST'];
  const responses = { '200': successResponse(resource), ...errorResponses() };
  const description = resource.description ?? resource.summary;
  const item: Doc = {
    summary: resource.summary,
    description,
    [ROUTE_INFO_KEY]: {
      resource: resource.name,
      output: resource.output.kind,
      drawable: resource.output.kind === 'json' && !!resource.output.drawable,
      rendersImage: resource.output.kind === 'json' && !!resource.output.rendersImage,
      methods,
    } satisfies CvServeRouteInfo,
  };
  if (methods.includes('GET')) {
    item.get = {
      operationId: operationId(resource.name, 'ByUrl'),
      tags: ['resources'],
      summary: `${resource.summary} (image from a URL)`,
      description: `${description}\n\nThe image is downloaded from \`url\` (http or https only).`,
      parameters: [
        { name: 'url', in: 'query', required: true, description: 'Absolute http(s) URL of the image.', schema: { type: 'string', format: 'uri' } },
        ...params.map((p) => queryParameter(p, p.required)),
      ],
      responses,
    };
  }
  if (methods.includes('POST')) {
    item.post = {
      operationId: operationId(resource.name),
      tags: ['resources'],
      summary: resource.summary,
      description:
        `${description}\n\nThree ways to send the image: multipart/form-data (file in field \`image\`; parameters in the query, or as form fields of the same names), ` +
        'application/json (`imageBase64`, parameters as fields), or the raw image bytes as the body (image/*), parameters in the query string. ' +
        'Query parameters are accepted with every way; body fields win over them.',
      parameters: params.map((p) => queryParameter(p)),
      requestBody: {
        required: true,
        content: {
          'multipart/form-data': { schema: multipartSchema(), encoding: { image: { contentType: 'image/*' } } },
          'application/json': { schema: bodySchema('imageBase64', params), example: JSON_BODY_EXAMPLE },
          'image/*': { schema: binary },
          'application/octet-stream': { schema: binary },
        },
      },
      responses,
    };
  }
  return item;
}

export interface OpenApiOptions {
  /** Extra routes of the service itself (health, metrics...), merged into `paths` as given. */
  extraPaths?: Record<string, Doc>;
  /** Whether the service has API keys (default true): without them the document declares no security, so /docs shows no locks and no Authorize button. */
  apiKeys?: boolean;
}

/** The whole OpenAPI 3.1 document for a set of resources. */
export function buildOpenApi(resources: readonly AnyResource[], options: OpenApiOptions = {}): Doc {
  const paths: Doc = {
    '/': {
      get: {
        operationId: 'index',
        security: [{}],
        tags: ['service'],
        summary: 'Playground (HTML) or the list of routes (JSON)',
        description: 'Browsers (Accept: text/html) get the web playground; other clients get the route list as JSON.',
        responses: {
          '200': {
            description: 'The playground page, or the route list.',
            content: {
              'text/html': { schema: { type: 'string' } },
              'application/json': { schema: { $ref: '#/components/schemas/RouteList' } },
            },
          },
        },
      },
    },
    '/ping': {
      get: {
        operationId: 'ping',
        security: [{}],
        tags: ['service'],
        summary: 'Liveness check',
        responses: {
          '200': {
            description: 'The service answers.',
            content: { 'application/json': { schema: { type: 'object', required: ['success'], properties: { success: { const: true } } } } },
          },
          ...errorResponses(['NOT_FOUND']),
        },
      },
    },
    '/healthz': {
      get: {
        operationId: 'healthz',
        tags: ['service'],
        summary: 'Liveness: the process and its event loop answer',
        security: [{}],
        responses: { '200': { description: 'Alive.', content: { 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } } } } } },
      },
    },
    '/readyz': {
      get: {
        operationId: 'readyz',
        tags: ['service'],
        summary: 'Readiness: every model and worker pool is up, and the service is not shutting down',
        security: [{}],
        responses: {
          '200': { description: 'Ready.', content: { 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { const: 'ready' } } } } } },
          '503': {
            description: 'Not ready: what is missing, or shutting down.',
            content: {
              'application/json': {
                schema: { type: 'object', required: ['status', 'missing'], properties: { status: { const: 'not ready' }, missing: { type: 'array', items: { type: 'string' } } } },
              },
            },
          },
        },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        tags: ['service'],
        summary: 'Prometheus metrics',
        description: 'Requests, latency, queue depths, inference times, worker pools and process metrics in the Prometheus text format. Needs an API key when keys are on, unless CVSERVE_METRICS_PUBLIC is set.',
        responses: { '200': { description: 'The metrics.', content: { 'text/plain': { schema: { type: 'string' } } } }, '401': { $ref: '#/components/responses/Error401' } },
      },
    },
    '/docs': {
      get: {
        operationId: 'docs',
        security: [{}],
        tags: ['service'],
        summary: 'Interactive API docs (Swagger UI, served by the service itself)',
        responses: { '301': { description: 'To /docs/, the page.' } },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        security: [{}],
        tags: ['service'],
        summary: 'This document',
        responses: { '200': { description: 'The OpenAPI 3.1 document.', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
    ...options.extraPaths,
  };
  for (const resource of resources) paths[`/${resource.name}`] = resourcePath(resource);

  const allCodes = Object.keys(ERRORS) as ErrorCode[];
  const apiKeys = options.apiKeys ?? true;
  if (!apiKeys) {
    // No keys: no operation says which ones need none either.
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
