import { z } from 'zod';
import type { ImageInput } from '../image/types.js';
import type { ClassifyModel } from '../models/manifest.js';
import type { CostItem, ImageHeader, Resource, ResourceResult, RunContext } from './contract.js';
import { topK } from './onnx/decoders.js';
import { OnnxModelResource, type ModelChoice } from './onnx/model-resource.js';
import { param } from './params.js';

const params = z.strictObject({
  top: param.int({ min: 1, max: 20, default: 5, description: 'How many classes to return, best first.' }),
});

/** The Keras REST API's answer: `{"success": true, "predictions": [{"label", "probability"}]}`. */
export const predictionsSchema = z.object({
  success: z.literal(true),
  predictions: z.array(z.object({ label: z.string(), probability: z.number().min(0).max(1) })),
});

/** /predict: ImageNet classification with the manifest's classifier (MobileNetV2 int8 by default). */
export class PredictResource extends OnnxModelResource<ClassifyModel> implements Resource<typeof params> {
  readonly summary = 'Image classification (ImageNet-1k)';
  readonly description =
    'Classifies the image with the manifest\'s classifier (default MobileNetV2, int8, ONNX Runtime): shorter side to 256, centre crop 224, ' +
    'ImageNet mean/std, softmax. Answers {"success": true, "predictions": [{"label": "tabby", "probability": 0.29}, ...]}, best first.';
  readonly params = params;
  readonly output = { kind: 'json', schema: predictionsSchema } as const;

  constructor(choice: ModelChoice = {}) {
    super('predict', 'classify', choice);
  }

  cost(image: ImageHeader): CostItem[] {
    return this.inputResizeCost(image);
  }

  async run(input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const { model, labels } = this.binding.require();
    const { outputs } = await this.infer(input, ctx.signal, [model.decoder.output]);
    const scores = outputs[model.decoder.output]!.data;
    const predictions = topK(scores, p.top, model.decoder.activation).map((r) => ({
      label: labels[r.index] ?? `class ${r.index}`,
      probability: Math.round(r.probability * 1e4) / 1e4,
    }));
    return { kind: 'json', body: { success: true, predictions } };
  }
}

export function createPredictResource(choice: ModelChoice = {}): PredictResource {
  return new PredictResource(choice);
}
