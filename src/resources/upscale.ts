import { z } from 'zod';
import type { ImageInput } from '../image/types.js';
import type { SuperresModel } from '../models/manifest.js';
import type { CostItem, ImageHeader, InitContext, Resource, ResourceResult, RunContext } from './contract.js';
import { OnnxModelResource, type ModelChoice } from './onnx/model-resource.js';
import { tileCount, upscaleImage } from './onnx/superres.js';
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
  readonly output = { kind: 'image', defaultFormat: 'input' } as const;
  /** CVSERVE_UPSCALE_BATCH: most tiles per model run (0: the manifest's batch). */
  private batchCap = 0;

  constructor(choice: ModelChoice = {}) {
    super('upscale', 'superres', choice);
  }

  override init(ctx: InitContext): Promise<void> {
    this.batchCap = ctx.config.upscaleBatch;
    return super.init(ctx);
  }

  /** The output, the padded canvas the tiles are cut from (wide for a thin image), and the tiles the model runs. */
  cost(image: ImageHeader): CostItem[] {
    const { superres } = this.binding.require().model;
    const s = superres.scale;
    const out = { width: image.width * s, height: image.height * s };
    const { tiles, canvasW, canvasH } = tileCount(image.width, image.height, superres);
    return [
      { limit: 'maxOutputPixels', amount: out.width * out.height, what: `upscaling ${image.width}x${image.height} by ${s} to ${out.width}x${out.height}`, size: out },
      { limit: 'maxWorkPixels', amount: canvasW * canvasH, what: `the ${canvasW}x${canvasH} padded canvas the tiles are cut from` },
      { limit: 'upscaleMaxTiles', amount: tiles, what: `cutting ${image.width}x${image.height} into ${superres.tile}x${superres.tile} model tiles` },
    ];
  }

  async run(input: ImageInput, _p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const { model, engine } = this.binding.require();
    const image = await upscaleImage(await input.rgb(), {
      engine,
      modelId: model.id,
      inputName: model.input.name,
      spec: this.batchCap > 0 ? { ...model.superres, batch: Math.min(model.superres.batch, this.batchCap) } : model.superres,
      signal: ctx.signal,
      progress: ctx.progress,
    });
    return { kind: 'image', image, format: 'input' };
  }
}

export function createUpscaleResource(choice: ModelChoice = {}): UpscaleResource {
  return new UpscaleResource(choice);
}
