import { ERRORS, statusWord, type ErrorCode } from '../errors.js';
import { DEEPSTACK_ROUTES, type DeepstackField, type DeepstackRoute } from './routes.js';
import { int, object, type Doc } from './schema.js';

/**
 * The OpenAPI 3.1 path items of the DeepStack / CodeProject.AI routes, from the route table, for
 * src/openapi-document.ts. They carry no `x-cvserve` route info, so the playground (which lists
 * the native resources) leaves them out; /docs shows them under the tag `deepstack`.
 */

/** cvserve's version (from its package.json), as the status routes report it. */
export { packageVersion as cvserveVersion } from '../transport/version.js';

const binary = { type: 'string', format: 'binary', contentMediaType: 'application/octet-stream' };

const KEY_FIELDS: DeepstackField[] = [
  { name: 'api_key', description: 'An API key, when the service has keys (the headers Authorization: Bearer and X-API-Key work too).', schema: { type: 'string' } },
  { name: 'admin_key', description: 'Accepted as api_key is (cvserve has one set of keys).', schema: { type: 'string' } },
];

function fieldProperties(fields: readonly DeepstackField[]): Doc {
  return Object.fromEntries(fields.map((f) => [f.name, { ...f.schema, description: f.description }]));
}

function requestBody(route: DeepstackRoute): Doc {
  const fields = [...route.fields, ...(route.open ? [] : KEY_FIELDS)];
  const required = route.fields.filter((f) => f.required).map((f) => f.name);
  const image = (description: string) => ({ ...binary, description });
  const files: Record<DeepstackRoute['images'], { properties: Doc; required: string[]; more?: boolean }> = {
    one: { properties: { image: image('The image (JPEG, PNG, WebP, GIF, TIFF or AVIF; the type is read from the bytes). Without a field "image", the first file is taken.') }, required: ['image'] },
    many: { properties: { image: image('A photo of the user; more files under any names (image1, image2, ...).') }, required: ['image'], more: true },
    two: { properties: { image1: image('The first image (any field name).'), image2: image('The second image.') }, required: ['image1', 'image2'] },
    none: { properties: {}, required: [] },
  };
  const f = files[route.images];
  const schema = {
    type: 'object',
    required: [...f.required, ...required],
    properties: { ...f.properties, ...fieldProperties(fields) },
    ...(f.more ? { additionalProperties: binary } : {}),
  };
  const content: Doc = { 'multipart/form-data': { schema } };
  if (route.images === 'none') content['application/x-www-form-urlencoded'] = { schema: { ...schema, properties: fieldProperties(fields) } };
  return { required: route.images !== 'none', content };
}

/** Every status the registry can answer with, each as the dialect renders it. */
function errorResponses(): Doc {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, entry] of Object.entries(ERRORS) as [ErrorCode, (typeof ERRORS)[ErrorCode]][]) byStatus.set(entry.status, [...(byStatus.get(entry.status) ?? []), code]);
  const out: Doc = {};
  for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `${statusWord(status)}, e.g.:\n${codes.map((c) => `- ${ERRORS[c].message}`).join('\n')}`,
      ...(status === 503 ? { headers: { 'Retry-After': { description: 'Seconds to wait before retrying (when the server is busy).', schema: int } } } : {}),
      content: {
        'application/json': {
          schema: object({ success: { const: false }, error: { type: 'string', description: 'What went wrong, for people.' }, code: { const: status, description: 'The HTTP status.' } }),
          example: { success: false, error: ERRORS[codes[0]!].message, code: status },
        },
      },
    };
  }
  return out;
}

const camel = (kind: string) => kind.replace(/(^|-)([a-z])/g, (_, _d: string, c: string) => c.toUpperCase());

function pathItem(route: DeepstackRoute, customModels: readonly string[], alias: number): Doc {
  const errors = errorResponses();
  const item: Doc = { summary: route.summary, description: route.description };
  const parameters = route.pathParameters?.map((p) => ({
    name: p.name,
    in: 'path',
    required: true,
    description: p.description,
    schema: { type: 'string', ...(p.name === 'model' && customModels.length ? { examples: [...customModels] } : {}) },
  }));
  for (const method of route.methods) {
    const post = method === 'POST';
    item[method.toLowerCase()] = {
      operationId: `deepstack${camel(route.id)}${post || route.methods.length === 1 ? '' : 'Get'}${alias ? `Alias${alias}` : ''}`,
      tags: ['deepstack'],
      summary: route.summary,
      description:
        `${route.description}\n\nDeepStack / CodeProject.AI dialect: parameters as form fields (or in the query string); ` +
        'errors as `{"success": false, "error", "code"}` with the HTTP status in `code`.',
      ...(route.open ? { security: [{}] } : {}),
      ...(parameters ? { parameters } : {}),
      ...(post ? { requestBody: requestBody(route) } : {}),
      responses: { '200': { description: 'The answer.', content: { 'application/json': { schema: route.answerSchema } } }, ...errors },
    };
  }
  return item;
}

/** Path items for every /v1 route (aliases included), keyed by OpenAPI path. */
export function deepstackOpenApiPaths(options: { customModels?: readonly string[] } = {}): Record<string, Doc> {
  const paths: Record<string, Doc> = {};
  for (const route of DEEPSTACK_ROUTES) {
    [route.path, ...(route.aliases ?? [])].forEach((path, alias) => {
      paths[path.replace(/:(\w+)/g, '{$1}')] = pathItem(route, options.customModels ?? [], alias);
    });
  }
  return paths;
}
