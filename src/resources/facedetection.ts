import { z } from 'zod';
import { boxSchema } from './box.js';
import { DEFAULT_FACE_MIN_CONFIDENCE, type FaceEngine } from '../engines/face/engine.js';
import { facePixels, faceSearchSize, originalBox } from '../faces/pixels.js';
import type { DrawBox, ImageInput } from '../image/types.js';
import type { CostItem, ImageHeader, InitContext, Resource, ResourceResult, ResourceStatus, RunContext } from './contract.js';
import { drawParam, formatParam, param } from './params.js';

const params = z.strictObject({
  minConfidence: param.number({
    min: 0,
    max: 1,
    default: DEFAULT_FACE_MIN_CONFIDENCE,
    description: 'Lowest detector score reported (the SSD face detector\'s confidence, 0..1).',
  }),
  draw: drawParam(),
  format: formatParam(),
});


export const faceDetectionSchema = z.object({
  status: z.literal('ok'),
  result: z.array(z.object({ box: boxSchema, score: z.number().min(0).max(1).describe('The detector\'s confidence') })),
});

/** The face engine's readiness: lazy workers are ready until they fail to start. */
export function faceEngineStatus(engine: FaceEngine | undefined): ResourceStatus {
  if (!engine) return { ready: false, reason: 'not initialised' };
  const [pool] = engine.stats();
  return pool?.startupError ? { ready: false, reason: 'face models failed to load' } : { ready: true };
}

/**
 * What a face route costs beyond the decoded image (which CVSERVE_MAX_PIXELS bounds): the copy
 * faces are searched in, at most CVSERVE_FACE_MAX_SIDE a side (shrunk while decoding). The
 * detector itself runs on a fixed 512x512 input, and landmarks and descriptors on at most
 * CVSERVE_FACE_MAX_FACES face crops of 112/150 px: neither grows with the image.
 */
export function faceSearchCost(image: ImageHeader, maxSide: number): CostItem[] {
  const size = faceSearchSize(image, maxSide);
  return [{ limit: 'maxWorkPixels', amount: size.width * size.height, what: `the ${size.width}x${size.height} copy faces are searched in` }];
}

/** /facedetection: faces with face-api's SSD MobileNet v1 detector and its real scores. */
export class FaceDetectionResource implements Resource<typeof params> {
  readonly name = 'facedetection';
  readonly summary = 'Face detection (SSD face detector)';
  readonly description =
    'Finds human faces with face-api\'s SSD MobileNet v1 face detector (tfjs wasm, in worker threads) and answers ' +
    '{"status": "ok", "result": [{"box": [x1, y1, x2, y2], "score": 0.97}]}, largest face first, in original-image pixels. ' +
    'More faithful than /detect (the Haar cascade) on turned or small faces, with real confidences. draw=true answers the image with the boxes drawn.';
  readonly params = params;
  readonly output = { kind: 'json', schema: faceDetectionSchema, drawable: true } as const;
  private engine?: FaceEngine;
  private maxSide = 1920;
  private maxFaces = 50;

  async init(ctx: InitContext): Promise<void> {
    this.engine = ctx.engines.face;
    this.maxSide = ctx.config.faceMaxSide;
    this.maxFaces = ctx.config.faceMaxFaces;
  }

  status(): ResourceStatus {
    return faceEngineStatus(this.engine);
  }

  cost(image: ImageHeader): CostItem[] {
    return faceSearchCost(image, this.maxSide);
  }

  async run(input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const pixels = await facePixels(input, this.maxSide);
    const faces = await this.engine!.detect(pixels.image, { minConfidence: p.minConfidence, maxFaces: this.maxFaces }, ctx.signal);
    const result = faces.map((f) => ({ box: originalBox(f.box, pixels, input.width, input.height), score: Math.round(f.score * 1000) / 1000 }));
    const boxes: DrawBox[] = result.map((r) => ({ box: r.box, label: r.score.toFixed(2) }));
    return { kind: 'json', body: { status: 'ok', result }, boxes };
  }

  async close(): Promise<void> {}
}

export function createFaceDetectionResource(): FaceDetectionResource {
  return new FaceDetectionResource();
}
