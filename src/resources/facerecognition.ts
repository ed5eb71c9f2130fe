import { z } from 'zod';
import { boxSchema } from './box.js';
import type { FaceGalleryService } from '../faces/service.js';
import { DEFAULT_MIN_CONFIDENCE } from '../faces/match.js';
import type { DrawBox, ImageInput } from '../image/types.js';
import type { CostItem, ImageHeader, InitContext, Resource, ResourceResult, ResourceStatus, RunContext } from './contract.js';
import { faceEngineStatus, faceSearchCost } from './facedetection.js';
import { drawParam, formatParam, param } from './params.js';

/** The userid answered for a face that matches nobody registered (DeepStack's word). */
export const UNKNOWN_USER = 'unknown';

const params = z.strictObject({
  minConfidence: param.number({
    min: 0,
    max: 1,
    default: DEFAULT_MIN_CONFIDENCE,
    description:
      'A face is its nearest registered user when the calibrated confidence reaches this (DeepStack\'s min_confidence); ' +
      'the default 0.67 is the measured threshold (CVSERVE_FACE_MATCH_THRESHOLD). Lower accepts more, strangers included.',
  }),
  draw: drawParam(),
  format: formatParam(),
});

export const faceRecognitionSchema = z.object({
  status: z.literal('ok'),
  result: z.array(
    z.object({
      box: boxSchema,
      userid: z.string().describe('The registered user, or "unknown"'),
      confidence: z.number().min(0).max(1).describe('Calibrated confidence that the face is its nearest registered user (0 with an empty gallery)'),
    }),
  ),
});

/** /facerecognition: who is in the photo, against the face gallery (register through /v1/vision/face/register). */
export class FaceRecognitionResource implements Resource<typeof params> {
  readonly name = 'facerecognition';
  readonly summary = 'Face recognition against the registered users';
  readonly description =
    'Finds every face (SSD detector, largest first, at most CVSERVE_FACE_MAX_FACES), describes it (dlib ResNet, 128 floats) and names its nearest registered user ' +
    'when the calibrated confidence reaches minConfidence, else "unknown": {"status": "ok", "result": [{"box": [x1, y1, x2, y2], "userid": "alice", "confidence": 0.93}]}. ' +
    'Users are registered with POST /v1/vision/face/register (userid + images). draw=true answers the image with the names drawn.';
  readonly params = params;
  readonly output = { kind: 'json', schema: faceRecognitionSchema, drawable: true } as const;
  private faces?: FaceGalleryService;
  private maxSide = 1920;

  async init(ctx: InitContext): Promise<void> {
    this.faces = ctx.engines.faces;
    this.maxSide = ctx.config.faceMaxSide;
  }

  /** Ready while the face engine can start; an unavailable gallery answers 503 GALLERY_UNAVAILABLE per request, not here (it would take the whole service out of /readyz). */
  status(): ResourceStatus {
    return this.faces ? faceEngineStatus(this.faces.engine) : { ready: false, reason: 'not initialised' };
  }

  cost(image: ImageHeader): CostItem[] {
    return faceSearchCost(image, this.maxSide);
  }

  async run(input: ImageInput, p: z.output<typeof params>, ctx: RunContext): Promise<ResourceResult> {
    const faces = await this.faces!.recognize(input, { minConfidence: p.minConfidence }, ctx.signal);
    const result = faces.map((f) => ({ box: f.box, userid: f.userid ?? UNKNOWN_USER, confidence: f.confidence }));
    const boxes: DrawBox[] = result.map((r) => ({ box: r.box, label: r.userid }));
    return { kind: 'json', body: { status: 'ok', result }, boxes };
  }

  async close(): Promise<void> {}
}

export function createFaceRecognitionResource(): FaceRecognitionResource {
  return new FaceRecognitionResource();
}
