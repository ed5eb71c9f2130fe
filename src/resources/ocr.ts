import { z } from 'zod';
import type { Quad } from '../engines/onnx/text/db.js';
import type { DrawBox, ImageInput } from '../image/types.js';
import type { CostItem, ImageHeader, InitContext, Resource, ResourceResult, ResourceStatus, RunContext } from './contract.js';
import { drawParam, formatParam, param } from './params.js';
import { LATIN_CHARSET, TextModels } from './text/text-models.js';

/** The parameters /ocr and /alpr share: how far text detection looks, and how many boxes it reads. */
export const textParams = {
  maxSide: param.optionalInt({
    min: 32,
    max: 4096,
    description: 'Long side the photo is resized to for text detection, small photos enlarged (default: the manifest\'s, 960, or CVSERVE_OCR_MAX_SIDE when smaller). At most CVSERVE_OCR_MAX_SIDE.',
  }),
  maxBoxes: param.optionalInt({ min: 1, max: 1000, description: 'Most text boxes recognized, the detector\'s most confident first (default and most: CVSERVE_OCR_MAX_BOXES, 50).' }),
};

const params = z.strictObject({
  minConfidence: param.number({ min: 0, max: 1, default: 0.5, description: 'Lowest line confidence reported (mean of its characters\' probabilities).' }),
  charset: param.enum(['latin', 'all'] as const, {
    default: 'latin',
    description: 'Characters read: latin (A–Z, a–z, 0–9, space, . - ·: what signs and plates hold; measured more accurate on them) or all (the recognizer\'s 6623-character dictionary, Chinese included).',
  }),
  ...textParams,
  draw: drawParam(),
  format: formatParam(),
});

const point = z.tuple([z.number().int(), z.number().int()]);
export const box = z.tuple([z.number().int(), z.number().int(), z.number().int(), z.number().int()]).describe('[x1, y1, x2, y2] in original-image pixels');
export const polygon = z.tuple([point, point, point, point]).describe('The text box\'s corners [[x, y] × 4], clockwise from the top-left, in original-image pixels');

export const ocrSchema = z.object({
  status: z.literal('ok'),
  result: z.array(
    z.object({
      text: z.string(),
      confidence: z.number().min(0).max(1),
      box,
      polygon,
    }),
  ),
});

const round3 = (v: number) => Math.round(v * 1000) / 1000;

export function quadPolygon(q: Quad): z.output<typeof polygon> {
  return q.map(([x, y]) => [Math.round(x), Math.round(y)]) as z.output<typeof polygon>;
}

export function quadBox(q: Quad): [number, number, number, number] {
  const xs = q.map((p) => p[0]);
  const ys = q.map((p) => p[1]);
  return [Math.floor(Math.min(...xs)), Math.floor(Math.min(...ys)), Math.ceil(Math.max(...xs)), Math.ceil(Math.max(...ys))];
}

/** /ocr: every line of text in the photo (PP-OCRv4 detector and recognizer from the manifest). */
export class OcrResource implements Resource<typeof params> {
  readonly name = 'ocr';
  readonly summary = 'Text recognition (OCR): every line of text';
  readonly description =
    'Finds text lines with the PP-OCRv4 DB detector and reads each with the PP-OCRv4 CTC recognizer (ONNX Runtime, in worker threads), answering ' +
    '{"status": "ok", "result": [{"text": "STOP", "confidence": 0.98, "box": [x1, y1, x2, y2], "polygon": [[x, y], ...]}]} in reading order. ' +
    'draw=true answers the image with the boxes and their text drawn.';
  readonly params = params;
  readonly output = { kind: 'json', schema: ocrSchema, drawable: true } as const;

  constructor(private readonly text = new TextModels('ocr')) {}

  async init(ctx: InitContext): Promise<void> {
    await this.text.init(ctx);
  }

  status(): ResourceStatus {
    return this.text.status();
  }

  settled(): Promise<void> {
    return this.text.settled();
  }

  cost(image: ImageHeader, p: z.output<typeof params>): CostItem[] {
    return this.text.cost(image, p.maxSide, p.maxBoxes);
  }

  async run(input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const found = await this.text.detect(this.name, input, { maxSide: p.maxSide, maxBoxes: p.maxBoxes }, ctx.signal);
    const quads = found.boxes.map((b) => b.quad);
    const read = await this.text.recognize(this.name, input, quads, { charset: p.charset === 'latin' ? LATIN_CHARSET : undefined, alternatives: 0 }, ctx.signal);
    const result = read.lines
      .map((line, i) => ({ text: line.text.trim(), confidence: round3(line.confidence), box: quadBox(quads[i]!), polygon: quadPolygon(quads[i]!) }))
      .filter((l) => l.text !== '' && l.confidence >= p.minConfidence);
    const boxes: DrawBox[] = result.map((r) => ({ box: r.box, label: r.text }));
    ctx.log.debug({ boxes: quads.length, detectMs: Math.round(found.runMs), recognizeMs: Math.round(read.runMs) }, 'ocr');
    return { kind: 'json', body: { status: 'ok', result }, boxes };
  }

  async close(): Promise<void> {
    this.text.close();
  }
}

export function createOcrResource(text?: TextModels): OcrResource {
  return new OcrResource(text);
}
