import { drawBoxes } from '../image/draw.js';
import { assertEncodable, encodeImage, MIME_TYPES } from '../image/encode.js';
import { OUTPUT_FORMATS, type ImageInput, type OutputFormat } from '../image/types.js';
import type { AnyResource, ResourceResult } from './contract.js';

/** How the image arrived: the JSON way gets JSON back unless it names an image type. */
export type InputWay = 'url' | 'multipart' | 'json' | 'raw';

/** What the caller asked for, transport-free: the Accept header's value ('' for none) and how the image came. */
export interface AnswerWish {
  accept: string;
  source: InputWay;
}

/** The answer, ready to send (HTTP) or print (CLI): a JSON body or encoded image bytes. */
export type Answer =
  | { kind: 'json'; body: Record<string, unknown> }
  | { kind: 'image'; bytes: Buffer; format: OutputFormat; contentType: string };

/** An image/* type named explicitly in Accept (a bare wildcard does not count). */
function acceptedImageFormat(accept: string): OutputFormat | 'any' | undefined {
  const a = accept.toLowerCase();
  for (const format of OUTPUT_FORMATS) if (a.includes(MIME_TYPES[format])) return format;
  return a.includes('image/*') ? 'any' : undefined;
}

function acceptsJsonExplicitly(accept: string): boolean {
  return accept.toLowerCase().includes('application/json');
}

/**
 * Which face of the answer the caller prefers, for resources that can answer either (a chart or
 * its numbers): JSON when Accept names application/json (or the image came as JSON and Accept
 * names no image type), an image when Accept names an image type, otherwise no preference.
 */
export function preferredAnswer(wish: AnswerWish): 'json' | 'image' | undefined {
  const image = acceptedImageFormat(wish.accept);
  if (acceptsJsonExplicitly(wish.accept)) return 'json';
  if (image !== undefined) return 'image';
  return wish.source === 'json' ? 'json' : undefined;
}

function pickFormat(requested: unknown, accept: string, fallback: OutputFormat): OutputFormat {
  if (typeof requested === 'string' && (OUTPUT_FORMATS as readonly string[]).includes(requested)) return requested as OutputFormat;
  const accepted = acceptedImageFormat(accept);
  return accepted && accepted !== 'any' ? accepted : fallback;
}

function inputFormatOr(input: Pick<ImageInput, 'format'>, fallback: OutputFormat): OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(input.format) ? (input.format as OutputFormat) : fallback;
}

function wantsDrawing(params: Record<string, unknown>, accept: string): boolean {
  return params.draw === true || (acceptedImageFormat(accept) !== undefined && !acceptsJsonExplicitly(accept));
}

/**
 * The image answer settled before the work, if any: boxes drawn on the input (`drawn`), or an image
 * route whose format the caller named. Undefined for JSON answers and for formats only the result
 * decides. The cost bound uses it to refuse an answer too large for its format before the work.
 */
export function plannedImageAnswer(
  resource: AnyResource,
  params: Record<string, unknown>,
  input: Pick<ImageInput, 'format'>,
  wish: AnswerWish,
): { format: OutputFormat; drawn: boolean } | undefined {
  if (resource.output.kind === 'json') {
    if (!resource.output.drawable || !wantsDrawing(params, wish.accept)) return undefined;
    return { format: pickFormat(params.format, wish.accept, inputFormatOr(input, 'jpeg')), drawn: true };
  }
  const declared = resource.output.defaultFormat;
  if (declared !== undefined) {
    return { format: pickFormat(params.format, wish.accept, declared === 'input' ? inputFormatOr(input, 'png') : declared), drawn: false };
  }
  const accepted = acceptedImageFormat(wish.accept);
  if (params.format === undefined && (accepted === undefined || accepted === 'any')) return undefined;
  return { format: pickFormat(params.format, wish.accept, 'png'), drawn: false };
}

function image(bytes: Buffer, format: OutputFormat): Answer {
  return { kind: 'image', bytes, format, contentType: MIME_TYPES[format] };
}

/**
 * Turns a resource's result into its answer, the same for every transport: JSON as is, boxes
 * drawn on the input when the caller asks for an image (draw=true or Accept: image/*), images as
 * bytes or, for JSON callers, as {"imageBase64", "format"}.
 */
export async function formatAnswer(
  resource: AnyResource,
  result: ResourceResult,
  params: Record<string, unknown>,
  input: ImageInput,
  wish: AnswerWish,
): Promise<Answer> {
  const { accept, source } = wish;
  if (result.kind === 'json') {
    const drawable = resource.output.kind === 'json' && resource.output.drawable && result.boxes;
    if (drawable && wantsDrawing(params, accept)) {
      const format = pickFormat(params.format, accept, inputFormatOr(input, 'jpeg'));
      assertEncodable(input.width, input.height, format);
      return image(await drawBoxes(input, result.boxes!, format), format);
    }
    return { kind: 'json', body: result.body };
  }

  let format: OutputFormat;
  let bytes: Buffer;
  if (result.kind === 'encoded-image') {
    ({ format, bytes } = result);
  } else {
    const fallback = result.format === 'input' ? inputFormatOr(input, 'png') : (result.format ?? 'png');
    format = pickFormat(params.format, accept, fallback);
    bytes = await encodeImage(result.image, format);
  }
  const wantsJson = source === 'json' ? acceptedImageFormat(accept) === undefined : acceptsJsonExplicitly(accept);
  if (wantsJson) return { kind: 'json', body: { imageBase64: bytes.toString('base64'), format } };
  return image(bytes, format);
}

/** The exact bytes of a JSON answer: what Express's res.json sends (no `json spaces` set). */
export function jsonBytes(body: unknown): Buffer {
  return Buffer.from(JSON.stringify(body), 'utf8');
}
