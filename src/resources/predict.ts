import { z } from 'zod';
import type { ImageInput } from '../image/types.js';
import { allocateBatch, batchDims, packImage, prepareImage } from '../image/preprocess.js';
import type { ClassifyModel } from '../models/manifest.js';
import type { InitContext, Resource, ResourceResult, ResourceStatus, RunContext } from './contract.js';
import { topK } from './onnx/decoders.js';
import { OnnxModelBinding } from './onnx/model-resource.js';
import { param } from './params.js';

const params = z.strictObject({
  top: param.int({ min: 1, max: 20, default: 5, description: 'How many classes to return, best first.' }),
});

/** The Keras REST API's answer: `{"success": true, "predictions": [{"label", "probability"}]}`. */
export const predictionsSchema = z.object({
  success: z.literal(true),
  predictions: z.array(z.object({ label: z.string(), probability: z.number().min(0).max(1) })),
});

export interface ModelChoice {
  /** A model id from the manifest instead of the one `routes` names for this route. */
  modelId?: string;
  /** Route name (default `predict`). */
  name?: string;
}

/** /predict: ImageNet classification with the manifest's classifier (MobileNetV2 int8 by default). */
export class PredictResource implements Resource<typeof params> {
  readonly name: string;
  readonly summary = 'Image classification (ImageNet-1k)';
  readonly description =
    'Classifies the image with the manifest\'s classifier (default MobileNetV2, int8, ONNX Runtime): shorter side to 256, centre crop 224, ' +
    'ImageNet mean/std, softmax. Answers {"success": true, "predictions": [{"label": "tabby", "probability": 0.29}, ...]}, best first.';
  readonly params = params;
  readonly output = { kind: 'json', schema: predictionsSchema } as const;
  private readonly binding: OnnxModelBinding<ClassifyModel>;

  constructor(choice: ModelChoice = {}) {
    this.name = choice.name ?? 'predict';
    this.binding = new OnnxModelBinding(this.name, 'classify', choice.modelId);
  }

  init(ctx: InitContext): Promise<void> {
    return this.binding.init(ctx);
  }

  status(): ResourceStatus {
    return this.binding.status();
  }

  /** Settles once the model is loaded or has definitely failed. */
  settled(): Promise<void> {
    return this.binding.settled();
  }

  async run(input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const { model, engine, labels } = this.binding.require();
    const size = this.binding.inputSize();
    const prepared = await prepareImage(input, model.preprocess.resize, size);
    const pixels = size.width * size.height;
    const data = packImage(prepared.rgb, pixels, { ...model.preprocess, layout: model.input.layout, dtype: model.input.dtype }, allocateBatch(model.input.dtype, 1, pixels));
    const outputs = await engine.run(model.id, { [model.input.name]: { data, dims: batchDims(model.input.layout, 1, size) } }, { signal: ctx.signal, outputs: [model.decoder.output] });
    const scores = outputs[model.decoder.output]!.data;
    const predictions = topK(scores, p.top, model.decoder.activation).map((r) => ({
      label: labels[r.index] ?? `class ${r.index}`,
      probability: Math.round(r.probability * 1e4) / 1e4,
    }));
    return { kind: 'json', body: { success: true, predictions } };
  }

  async close(): Promise<void> {
    this.binding.close();
  }
}

export function createPredictResource(choice: ModelChoice = {}): PredictResource {
  return new PredictResource(choice);
}
