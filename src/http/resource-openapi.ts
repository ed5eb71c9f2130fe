import { INPUT_FORMATS, OUTPUT_FORMATS } from '../image/types.js';
import type { AnyResource } from '../resources/contract.js';
import { describeParams, outputSchema, type ParamDescription } from '../resources/describe.js';
import { ROUTE_INFO_KEY, type CvServeRouteInfo } from '../web/route-info.js';
import { errorResponses, type Doc } from './openapi.js';

/**
 * The resource routes' path items, generated from each resource's own declaration (the zod
 * schemas that validate requests), so a new resource, built-in or plugin, is documented with no
 * extra work: its four input ways, its parameters with types, defaults and bounds, each answer it
 * can give, and every error code with its status.
 */

const binary = { type: 'string', format: 'binary', contentMediaType: 'application/octet-stream' };
const imageTypes = OUTPUT_FORMATS.map((f) => `image/${f}`);

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

/** `Accept: text/event-stream`: progress, then the answer (src/http/resource-route.ts). */
const EVENT_STREAM = {
  'text/event-stream': {
    schema: {
      type: 'string',
      description:
        'Server-sent events: `progress` `{"done","total"}` while long work runs (e.g. /upscale tiles), then `result` (the JSON answer; an image as ' +
      '`{"imageBase64","format"}`) or `error` (the error body). A request refused before any work gets its plain HTTP error instead.',
    },
  },
};

function successResponse(resource: AnyResource): Doc {
  const output = resource.output;
  const imageContent = Object.fromEntries(imageTypes.map((t) => [t, { schema: binary }]));
  if (output.kind === 'image') {
    return {
      description:
        'The result image, as bytes in the format asked for (`format`, or an image type in Accept). ' +
        'JSON requests (and Accept: application/json) get `{"imageBase64", "format"}` instead; Accept: text/event-stream gets progress events, then the result.',
      content: { ...imageContent, 'application/json': { schema: { $ref: '#/components/schemas/ImageAsJson' } }, ...EVENT_STREAM },
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
      ...EVENT_STREAM,
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


/** Every resource's path item, keyed by its route. */
export function resourcePaths(resources: readonly AnyResource[]): Record<string, Doc> {
  return Object.fromEntries(resources.map((r) => [`/${r.name}`, resourcePath(r)]));
}
