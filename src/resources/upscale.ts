import { z } from 'zod';
import { AppError } from '../errors.js';
import type { ImageInput } from '../image/types.js';
import type { SuperresModel } from '../models/manifest.js';
import type { InitContext, Resource, ResourceResult, RunContext } from './contract.js';
import { OnnxModelResource, type ModelChoice } from './onnx/model-resource.js';
import { upscaleImage } from './onnx/superres.js';
import { formatParam } from './params.js';

const params = z.strictObject({
  format: formatParam(),
});

/** /upscale: super-resolution with the manifest's model (ESPCN x3 on luma by default). */
export class UpscaleResource extends OnnxModelResource<SuperresModel> implements Resource<typeof params> {
  readonly summary = 'Super-resolution upscaling';
  readonly description =
    'Upscales the image with the manifest\'s super-resolution model (default ESPCN x3 on the luma channel, chroma bicubic), in overlapping ' +
    'tiles stitched without seams. The answer is the image, in the input\'s format unless format says otherwise; a JSON request ' +
    '{"imageBase64": ...} gets {"imageBase64": ...} back. Output larger than CVSERVE_MAX_OUTPUT_PIXELS is refused with 413.';
  readonly params = params;
  readonly output = { kind: 'image' } as const;
  private maxOutputPixels = 0;

  constructor(choice: ModelChoice = {}) {
    super('upscale', 'superres', choice);
  }

  override init(ctx: InitContext): Promise<void> {
    this.maxOutputPixels = ctx.config.maxOutputPixels;
    return super.init(ctx);
  }

  async run(input: ImageInput, _p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const { model, engine } = this.binding.require();
    const s = model.superres.scale;
    const outW = input.width * s;
    const outH = input.height * s;
    // Checked from the header, before any decoding or inference.
    if (outW * outH > this.maxOutputPixels) {
      throw new AppError('OUTPUT_TOO_LARGE', {
        publicMessage: `Upscaling ${input.width}x${input.height} by ${s} gives ${outW}x${outH} = ${outW * outH} pixels; the limit is ${this.maxOutputPixels} pixels (CVSERVE_MAX_OUTPUT_PIXELS)`,
      });
    }
    const image = await upscaleImage(await input.rgb(), {
      engine,
      modelId: model.id,
      inputName: model.input.name,
      spec: model.superres,
      signal: ctx.signal,
    });
    return { kind: 'image', image, format: 'input' };
  }
}

export function createUpscaleResource(choice: ModelChoice = {}): UpscaleResource {
  return new UpscaleResource(choice);
}
