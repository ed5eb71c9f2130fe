import { z } from 'zod';
import { boxSchema } from './box.js';
import { AppError } from '../errors.js';
import type { DrawBox, ImageInput } from '../image/types.js';
import type { DetectModel } from '../models/manifest.js';
import type { CostItem, ImageHeader, Resource, ResourceResult, RunContext } from './contract.js';
import { candidateRows, decodeDetections } from './onnx/decoders.js';
import { OnnxModelResource, type ModelChoice } from './onnx/model-resource.js';
import { drawParam, formatParam, param } from './params.js';

const params = z.strictObject({
  labels: param.list({ default: ['cat'], description: 'Classes to report, comma-separated model class names (e.g. dog,cat), or all.' }),
  threshold: param.number({ min: 0, max: 1, default: 0.3, description: 'Lowest score reported.' }),
  draw: drawParam(),
  format: formatParam(),
});

export const catDetectionSchema = z.object({
  status: z.literal('ok'),
  result: z.array(
    z.object({
      box: boxSchema,
      label: z.string(),
      score: z.number().min(0).max(1),
    }),
  ),
});

/** /catdetection: objects (cats by default) with the manifest's detector (YOLOX-nano by default). */
export class ObjectDetectionResource extends OnnxModelResource<DetectModel> implements Resource<typeof params> {
  readonly summary = 'Cat (and other COCO object) detection';
  readonly description =
    'Detects objects with the manifest\'s detector (default YOLOX-nano, COCO classes, ONNX Runtime; SSD-style models are supported too) and ' +
    'answers {"status": "ok", "result": [{"box": [x1, y1, x2, y2], "label": "cat", "score": 0.76}]}, best first, after per-class NMS. ' +
    'Cats only unless labels says otherwise (labels=dog,cat or labels=all). draw=true answers the image with the boxes drawn.';
  readonly params = params;
  readonly output = { kind: 'json', schema: catDetectionSchema, drawable: true } as const;

  constructor(choice: ModelChoice = {}) {
    super('catdetection', 'detect', choice);
  }

  cost(image: ImageHeader): CostItem[] {
    return this.inputResizeCost(image);
  }

  async run(input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const { model, labels } = this.binding.require();
    const classes = classFilter(p.labels, labels);
    const { outputs, prepared, size } = await this.infer(input, ctx.signal, undefined, candidateRows(model.decoder, p.threshold));
    const options = { threshold: p.threshold, classes };
    const found = decodeDetections(outputs, model.decoder, size, prepared.transform, options);
    const result = found.map((d) => ({
      box: d.box.map(Math.round) as [number, number, number, number],
      label: labels[d.classId] ?? `class ${d.classId}`,
      score: Math.round(d.score * 1000) / 1000,
    }));
    const boxes: DrawBox[] = result.map((r) => ({ box: r.box, label: `${r.label} ${r.score.toFixed(2)}` }));
    return { kind: 'json', body: { status: 'ok', result }, boxes };
  }
}

/** Class ids for the requested label names; undefined for `all`. Unknown names are a 400. */
export function classFilter(requested: string[], labels: string[]): Set<number> | undefined {
  if (requested.some((l) => l.toLowerCase() === 'all')) return undefined;
  const ids = new Set<number>();
  const unknown: string[] = [];
  for (const name of requested) {
    const id = labels.findIndex((l) => l.toLowerCase() === name.toLowerCase());
    if (id < 0) unknown.push(name);
    else ids.add(id);
  }
  if (unknown.length > 0 || ids.size === 0) {
    throw new AppError('BAD_PARAMETER', {
      publicMessage: `labels: unknown class name(s) ${unknown.map((u) => JSON.stringify(u)).join(', ') || '(none given)'}; use the model's class names (e.g. cat, dog, person, car) or all`,
    });
  }
  return ids;
}

export function createObjectDetectionResource(choice: ModelChoice = {}): ObjectDetectionResource {
  return new ObjectDetectionResource(choice);
}
