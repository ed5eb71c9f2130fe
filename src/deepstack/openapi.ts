import { ERRORS, statusWord, type ErrorCode } from '../errors.js';
import { DEEPSTACK_ROUTES, type DeepstackField, type DeepstackRoute, type DeepstackRouteKind } from './routes.js';

/**
 * The OpenAPI 3.1 path items of the DeepStack / CodeProject.AI routes, from the route table, for
 * src/openapi-document.ts. They carry no `x-cvserve` route info, so the playground (which lists
 * the native resources) leaves them out; /docs shows them under the tag `deepstack`.
 */

type Doc = Record<string, unknown>;

/** cvserve's version (from its package.json), as the status routes report it. */
export { packageVersion as cvserveVersion } from '../http/openapi.js';

const binary = { type: 'string', format: 'binary', contentMediaType: 'application/octet-stream' };
const int = { type: 'integer' };
const box = { x_min: int, y_min: int, x_max: int, y_max: int };
const unit = { type: 'number', minimum: 0, maximum: 1 };
const timings = {
  inferenceMs: { ...int, description: 'Time in the model run (preprocessing, inference, decoding).' },
  processMs: { ...int, description: 'Time in the pipeline, body read included.' },
  analysisRoundTripMs: { ...int, description: 'From the request\'s arrival to the answer.' },
};

const object = (properties: Doc, required: string[] = Object.keys(properties)): Doc => ({ type: 'object', required, properties });
const success = { const: true };
const predictionsOf = (item: Doc): Doc => ({
  type: 'array',
  description: 'Best (detection) or largest (faces) first; box corners in integer pixels of the image sent.',
  items: object(item),
});

const ANSWERS: Record<DeepstackRouteKind, Doc> = {
  detection: detectionAnswer(),
  custom: detectionAnswer(),
  'custom-list': object({ success, models: { type: 'array', items: { type: 'string' }, description: 'Names for /v1/vision/custom/{model}: the manifest\'s detectors.' } }, ['success', 'models']),
  face: object({ success, message: { type: 'string' }, count: int, predictions: predictionsOf({ confidence: unit, ...box }), ...timings }, ['success', 'predictions', 'count']),
  'face-recognize': object(
    { success, message: { type: 'string' }, count: int, predictions: predictionsOf({ userid: { type: 'string', description: 'The registered user, or "unknown".' }, confidence: unit, ...box }), ...timings },
    ['success', 'predictions', 'count'],
  ),
  'face-register': object(
    {
      success,
      message: { type: 'string', enum: ['face added', 'face already registered'] },
      userid: { type: 'string' },
      added: int,
      duplicates: int,
      images: { type: 'array', items: object({ field: { type: 'string' }, status: { enum: ['added', 'duplicate', 'no face', 'invalid image'] }, message: { type: 'string' } }, ['field', 'status']) },
    },
    ['success', 'message', 'userid', 'added', 'duplicates', 'images'],
  ),
  'face-list': object({ success, faces: { type: 'array', items: { type: 'string' } }, users: { type: 'array', items: object({ userid: { type: 'string' }, photos: int }) } }),
  'face-delete': object({ success, deleted: { ...int, description: 'Face descriptors removed (0 for an unknown user).' } }),
  'face-match': object({ success, similarity: unit }),
  scene: object({ success, label: { type: 'string' }, confidence: unit, ...timings }, ['success', 'label', 'confidence']),
  enhance: object({ success, base64: { type: 'string', contentEncoding: 'base64', description: 'The upscaled image, JPEG.' }, width: int, height: int }),
  superresolution: object({ success, imageBase64: { type: 'string', contentEncoding: 'base64', description: 'The upscaled image, PNG.' }, ...timings }, ['success', 'imageBase64']),
  alpr: object(
    {
      success,
      message: { type: 'string', description: 'CodeProject.AI\'s "Found Plate: ABC123, ..." or "No plates found".' },
      count: int,
      predictions: predictionsOf({
        label: { type: 'string', description: '"Plate: " and the plate.' },
        plate: { type: 'string' },
        confidence: unit,
        ...box,
        candidates: { type: 'array', items: object({ plate: { type: 'string' }, confidence: unit, matchesTemplate: { type: 'boolean' } }) },
      }),
      ...timings,
    },
    ['success', 'predictions', 'count'],
  ),
  ocr: object(
    { success, message: { type: 'string' }, count: int, predictions: predictionsOf({ label: { type: 'string', description: 'The text of the line.' }, confidence: unit, ...box }), ...timings },
    ['success', 'predictions', 'count'],
  ),
  ping: object({ success }),
  update: object(
    { success, message: { type: 'string' }, updateAvailable: { const: false }, current: { type: 'object' }, latest: { type: 'object' } },
    ['success', 'updateAvailable', 'current', 'latest'],
  ),
};

function detectionAnswer(): Doc {
  return object(
    {
      success,
      message: { type: 'string', description: 'CodeProject.AI\'s "Found cat, bed..." or "No objects found".' },
      count: int,
      predictions: predictionsOf({ label: { type: 'string' }, confidence: unit, ...box }),
      ...timings,
    },
    ['success', 'predictions', 'count'],
  );
}

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
  const parameters =
    route.kind === 'custom'
      ? [{ name: 'model', in: 'path', required: true, description: 'The custom model: a detector id of the manifest (case ignored).', schema: { type: 'string', ...(customModels.length ? { examples: [...customModels] } : {}) } }]
      : undefined;
  for (const method of route.methods) {
    const post = method === 'POST';
    item[method.toLowerCase()] = {
      operationId: `deepstack${camel(route.kind)}${post || route.methods.length === 1 ? '' : 'Get'}${alias ? `Alias${alias}` : ''}`,
      tags: ['deepstack'],
      summary: route.summary,
      description:
        `${route.description}\n\nDeepStack / CodeProject.AI dialect: parameters as form fields (or in the query string); ` +
        'errors as `{"success": false, "error", "code"}` with the HTTP status in `code`.',
      ...(route.open ? { security: [{}] } : {}),
      ...(parameters ? { parameters } : {}),
      ...(post ? { requestBody: requestBody(route) } : {}),
      responses: { '200': { description: 'The answer.', content: { 'application/json': { schema: ANSWERS[route.kind] } } }, ...errors },
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
