import { z } from 'zod';
import type { CostItem, ImageHeader, InitContext, Resource, ResourceResult, ResourceStatus, RunContext } from './contract.js';
import { assertEncodable, JPEG_OPTIONS } from '../image/encode.js';
import type { ImageInput } from '../image/types.js';
import type { OpenCvEngine } from '../engines/opencv/engine.js';
import { formatParam, param } from './params.js';

const params = z.strictObject({
  threshold1: param.number({ min: 0, max: 10_000, default: 100, description: 'First hysteresis threshold (cv.Canny threshold1).' }),
  threshold2: param.number({ min: 0, max: 10_000, default: 200, description: 'Second hysteresis threshold (cv.Canny threshold2).' }),
  format: formatParam('jpeg'),
});

/** Canny edge map: OpenCV's RGB→gray then cv.Canny, exactly as the Python service did. */
export class CannyResource implements Resource<typeof params> {
  readonly name = 'canny';
  readonly summary = 'Canny edge detection';
  readonly description = 'Grayscale, then cv.Canny(gray, threshold1, threshold2). Answers the edge map as an image (JPEG by default), or as {"imageBase64", "format"} for JSON requests.';
  readonly params = params;
  readonly output = { kind: 'image' } as const;
  private opencv?: OpenCvEngine;

  async init(ctx: InitContext): Promise<void> {
    this.opencv = ctx.engines.opencv;
  }

  status(): ResourceStatus {
    return this.opencv ? { ready: true } : { ready: false, reason: 'not initialised' };
  }

  /** The edge map is an output image of the input's size. */
  cost(image: ImageHeader): CostItem[] {
    const size = { width: image.width, height: image.height };
    return [{ limit: 'maxOutputPixels', amount: image.width * image.height, what: `the ${image.width}x${image.height} edge map`, size }];
  }

  async run(input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    // A JPEG answered as JPEG: the worker decodes, detects and encodes (the same bytes, no pixels
    // crossing threads). Otherwise, or when the worker cannot decode the file, the general way.
    if (ctx.imageFormat === 'jpeg' && input.format === 'jpeg' && input.decodableByLibjpeg) {
      assertEncodable(input.width, input.height, 'jpeg');
      const jpeg = await this.opencv!.cannyJpeg(input.bytes, input, p.threshold1, p.threshold2, JPEG_OPTIONS.quality, ctx.signal);
      if (jpeg) return { kind: 'encoded-image', bytes: jpeg, format: 'jpeg' };
    }
    // The decode is needed for nothing else: its pixels move to the worker instead of being copied.
    const rgb = await input.takeAnalysisRgb();
    const edges = await this.opencv!.canny(rgb, p.threshold1, p.threshold2, ctx.signal, true);
    return { kind: 'image' as const, image: edges, format: p.format };
  }

  async close(): Promise<void> {}
}

export function createCannyResource(): CannyResource {
  return new CannyResource();
}
