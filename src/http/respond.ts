import type { Request, Response } from 'express';
import { drawBoxes } from '../image/draw.js';
import { encodeImage, MIME_TYPES } from '../image/encode.js';
import { OUTPUT_FORMATS, type ImageInput, type OutputFormat } from '../image/types.js';
import type { AnyResource, ResourceResult } from '../resources/contract.js';
import type { ImageSource } from './image-request.js';

/** An image/* type named explicitly in Accept (a bare wildcard does not count). */
function acceptedImageFormat(req: Request): OutputFormat | 'any' | undefined {
  const accept = (req.get('accept') ?? '').toLowerCase();
  for (const format of OUTPUT_FORMATS) if (accept.includes(MIME_TYPES[format])) return format;
  return accept.includes('image/*') ? 'any' : undefined;
}

function acceptsJsonExplicitly(req: Request): boolean {
  return (req.get('accept') ?? '').toLowerCase().includes('application/json');
}

function pickFormat(requested: unknown, req: Request, fallback: OutputFormat): OutputFormat {
  if (typeof requested === 'string' && (OUTPUT_FORMATS as readonly string[]).includes(requested)) return requested as OutputFormat;
  const accepted = acceptedImageFormat(req);
  return accepted && accepted !== 'any' ? accepted : fallback;
}

function inputFormatOr(input: ImageInput, fallback: OutputFormat): OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(input.format) ? (input.format as OutputFormat) : fallback;
}

/**
 * Turns a resource's result into the HTTP answer: JSON as is, boxes drawn on the input when the
 * client asks for an image (draw=true or Accept: image/*), images as bytes or, for JSON clients,
 * as {"imageBase64", "format"}.
 */
export async function sendResult(
  req: Request,
  res: Response,
  resource: AnyResource,
  result: ResourceResult,
  params: Record<string, unknown>,
  input: ImageInput,
  source: ImageSource,
): Promise<void> {
  if (result.kind === 'json') {
    const drawable = resource.output.kind === 'json' && resource.output.drawable && result.boxes;
    const wantsDrawing = params.draw === true || (acceptedImageFormat(req) !== undefined && !acceptsJsonExplicitly(req));
    if (drawable && wantsDrawing) {
      const format = pickFormat(params.format, req, inputFormatOr(input, 'jpeg'));
      const bytes = await drawBoxes(input, result.boxes!, format);
      res.type(MIME_TYPES[format]).send(bytes);
      return;
    }
    res.json(result.body);
    return;
  }

  const fallback = result.format === 'input' ? inputFormatOr(input, 'png') : (result.format ?? 'png');
  const format = pickFormat(params.format, req, fallback);
  const bytes = await encodeImage(result.image, format);
  const wantsJson = source === 'json' ? acceptedImageFormat(req) === undefined : acceptsJsonExplicitly(req);
  if (wantsJson) {
    res.json({ imageBase64: bytes.toString('base64'), format });
    return;
  }
  res.type(MIME_TYPES[format]).send(bytes);
}
