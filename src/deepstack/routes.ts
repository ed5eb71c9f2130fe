import sharp from 'sharp';
import { AppError } from '../errors.js';
import type { Answer } from '../resources/answer.js';
import type { AnyResource } from '../resources/contract.js';
import { detectionAnswer, faceAnswer, recognizeAnswer, sceneAnswer, updateAnswer, type Timings } from './answer.js';
import { MIN_CONFIDENCE_FLOOR, minConfidence } from './fields.js';
import { alprAnswer, ocrAnswer, regionField } from './text-answer.js';
import { deleteUser, listUsers, matchFaces, registerFaces, type DeepstackGallery } from './gallery-actions.js';
import type { DialectRequest } from './request.js';
import type { DialectResources } from './resources.js';
import { box, detectionSchema, int, object, predictionsOf, success, timings, unit, type Doc } from './schema.js';

/**
 * The DeepStack / CodeProject.AI routes cvserve answers, as one table: each entry says what the
 * route takes (for the docs), what it runs (a resource through the pipeline with a mapping from
 * the form fields to its parameters and from its answer to the dialect's, or work on the body),
 * and the schema of its answer. The router mounts the entries and the OpenAPI document describes
 * them; adding a route is adding an entry. Paths match case-insensitively and with or without a
 * trailing slash (as CodeProject.AI does; DeepStack's face detection is `/v1/vision/face/`).
 */

/** A form field (also accepted in the query string) a route reads. */
export interface DeepstackField {
  name: string;
  description: string;
  schema: Record<string, unknown>;
  required?: boolean;
}

/** What a route's work is given besides its body. */
export interface RouteContext {
  /** Path parameters (`:model`). */
  path: Record<string, string>;
  served: DialectResources;
  /** Face register / list / delete / match; absent when the app has no face service. */
  gallery?: DeepstackGallery;
}

type AnswerBody = Record<string, unknown>;

export type RouteAction =
  /** Answered at once, without reading a body or a key. */
  | { run: 'static'; answer(): AnswerBody }
  /** One image through the pipeline to a resource. */
  | {
      run: 'resource';
      resource(ctx: RouteContext): AnyResource | undefined;
      params(fields: Record<string, string>): Record<string, unknown>;
      answer(answer: Answer, timings: Timings, ctx: RouteContext): AnswerBody | Promise<AnswerBody>;
    }
  /** Work on the read (and key-checked) body under the request's deadline. */
  | { run: 'body'; answer(body: DialectRequest, signal: AbortSignal, ctx: RouteContext): Promise<AnswerBody> };

export interface DeepstackRoute {
  /** Names the route's operations in the OpenAPI document. */
  id: string;
  /** Express path; `:model` is the custom model's name. */
  path: string;
  /** Other paths answering the same (CodeProject.AI's `/v1/server/status/...`). */
  aliases?: readonly string[];
  methods: readonly ('GET' | 'POST')[];
  /** Answers without an API key, as /ping does: status routes carry no data. */
  open?: boolean;
  /** Which files the route takes. */
  images: 'one' | 'two' | 'many' | 'none';
  /** The native resource it runs through the pipeline, if any (for the docs and the 501 message). */
  resource?: string;
  fields: readonly DeepstackField[];
  /** Path parameters, for the docs. */
  pathParameters?: readonly { name: string; description: string }[];
  summary: string;
  description: string;
  /** The answer's JSON schema. */
  answerSchema: Doc;
  action: RouteAction;
}

/** DeepStack's and CodeProject.AI's default for object detection (`server.go`, `detect_adapter.py`). */
export const DETECTION_MIN_CONFIDENCE = 0.4;
/** DeepStack's default for face detection (`server.go:180-186`). */
export const FACE_MIN_CONFIDENCE = 0.55;
/** DeepStack's and CodeProject.AI's default for face recognition. */
export const RECOGNIZE_MIN_CONFIDENCE = 0.67;
/** The lowest plate confidence /v1/vision/alpr reports by default (/alpr's own default). */
export const ALPR_MIN_CONFIDENCE = 0.6;
/** The lowest line confidence /v1/vision/ocr reports by default (/ocr's own default). */
export const OCR_MIN_CONFIDENCE = 0.5;

const confidence = (def: number, what: string): DeepstackField => ({
  name: 'min_confidence',
  description: `${what} (0..1; values under ${MIN_CONFIDENCE_FLOOR} count as ${MIN_CONFIDENCE_FLOOR}, as in DeepStack; empty or NaN: the default).`,
  schema: { type: 'number', minimum: 0, maximum: 1, default: def },
});

const userid = (description: string): DeepstackField => ({ name: 'userid', description, schema: { type: 'string', minLength: 1 }, required: true });

/** A resource's JSON answer (the dialect maps only JSON answers of these routes). */
function json(answer: Answer, what: string): AnswerBody {
  if (answer.kind !== 'json') throw new AppError('INTERNAL', { detail: `${what}: the resource answered ${answer.kind}, not JSON` });
  return answer.body;
}

function image(answer: Answer, what: string): Buffer {
  if (answer.kind !== 'image') throw new AppError('INTERNAL', { detail: `${what}: the resource answered ${answer.kind}, not an image` });
  return answer.bytes;
}

/** The gallery, with no readiness gate: each gallery call tries the database itself (match needs none). */
function withGallery(ctx: RouteContext, path: string): DeepstackGallery {
  if (!ctx.gallery) throw new AppError('NOT_AVAILABLE', { publicMessage: `${path} is not available in this version` });
  return ctx.gallery;
}

const detectionParams = (fields: Record<string, string>) => ({ labels: 'all', threshold: minConfidence(fields, DETECTION_MIN_CONFIDENCE) });

export const DEEPSTACK_ROUTES: readonly DeepstackRoute[] = [
  {
    id: 'detection',
    path: '/v1/vision/detection',
    methods: ['POST'],
    images: 'one',
    resource: 'catdetection',
    fields: [confidence(DETECTION_MIN_CONFIDENCE, 'Lowest confidence reported')],
    summary: 'Object detection (COCO, 80 classes)',
    description:
      'Every COCO object the detector of /catdetection finds (YOLOX-nano by default), best first: ' +
      '`{"success": true, "predictions": [{"label", "confidence", "x_min", "y_min", "x_max", "y_max"}], "count", "inferenceMs", "processMs"}`; ' +
      'box corners in integer pixels of the image sent.',
    answerSchema: detectionSchema(),
    action: {
      run: 'resource',
      resource: ({ served }) => served.byName('catdetection'),
      params: detectionParams,
      answer: (a, t) => detectionAnswer(json(a, 'detection'), t, 'detect', 'cvserve-detection'),
    },
  },
  {
    id: 'custom-list',
    path: '/v1/vision/custom/list',
    methods: ['GET', 'POST'],
    images: 'none',
    fields: [],
    summary: 'Custom models: the detectors of the model manifest',
    description: 'The names `/v1/vision/custom/<name>` answers to: every detector of the model manifest, by its id. `{"success": true, "models": ["yolox-nano", ...]}`.',
    answerSchema: object({ success, models: { type: 'array', items: { type: 'string' }, description: 'Names for /v1/vision/custom/{model}: the manifest\'s detectors.' } }, ['success', 'models']),
    action: { run: 'body', answer: async (_body, _signal, { served }) => ({ success: true, models: [...served.custom.keys()], command: 'list', moduleId: 'cvserve-detection' }) },
  },
  {
    id: 'custom',
    path: '/v1/vision/custom/:model',
    methods: ['POST'],
    images: 'one',
    fields: [confidence(DETECTION_MIN_CONFIDENCE, 'Lowest confidence reported')],
    pathParameters: [{ name: 'model', description: 'The custom model: a detector id of the manifest (case ignored).' }],
    summary: 'Object detection with a custom model (any detector of the manifest)',
    description:
      'Runs the manifest detector named `model` (its id, case ignored: YOLOX, SSD, YOLOv5 or YOLOv8/YOLO11 exports) and answers as /v1/vision/detection. ' +
      'An unknown name is 404.',
    answerSchema: detectionSchema(),
    action: {
      run: 'resource',
      resource: ({ served, path }) => {
        const name = path.model ?? '';
        const resource = served.custom.get(name.toLowerCase());
        if (!resource) throw new AppError('NOT_FOUND', { publicMessage: `No custom model named ${JSON.stringify(name.slice(0, 100))}: POST /v1/vision/custom/list lists them` });
        return resource;
      },
      params: detectionParams,
      answer: (a, t, { path }) => detectionAnswer(json(a, 'custom'), t, 'custom', (path.model ?? '').toLowerCase()),
    },
  },
  {
    id: 'face',
    path: '/v1/vision/face',
    methods: ['POST'],
    images: 'one',
    resource: 'facedetection',
    fields: [confidence(FACE_MIN_CONFIDENCE, 'Lowest face detector score reported')],
    summary: 'Face detection (SSD face detector, real confidences)',
    description:
      'Faces found by the SSD face detector of /facedetection, largest first: `{"success": true, "predictions": [{"confidence", "x_min", "y_min", "x_max", "y_max"}], "count"}` (no label, as DeepStack). ' +
      'The confidence is the detector\'s own score.',
    answerSchema: object({ success, message: { type: 'string' }, count: int, predictions: predictionsOf({ confidence: unit, ...box }), ...timings }, ['success', 'predictions', 'count']),
    action: {
      run: 'resource',
      resource: ({ served }) => served.byName('facedetection'),
      params: (f) => ({ minConfidence: minConfidence(f, FACE_MIN_CONFIDENCE) }),
      answer: (a, t) => faceAnswer(json(a, 'face'), t),
    },
  },
  {
    id: 'face-recognize',
    path: '/v1/vision/face/recognize',
    methods: ['POST'],
    images: 'one',
    resource: 'facerecognition',
    fields: [confidence(RECOGNIZE_MIN_CONFIDENCE, 'A face is its nearest registered user from this confidence on, else "unknown"')],
    summary: 'Face recognition against the registered users',
    description:
      'Every face with its registered user or "unknown": `{"success": true, "predictions": [{"userid", "confidence", "x_min", "y_min", "x_max", "y_max"}], "count"}`. ' +
      'A photo without faces answers success with no predictions.',
    answerSchema: object(
      { success, message: { type: 'string' }, count: int, predictions: predictionsOf({ userid: { type: 'string', description: 'The registered user, or "unknown".' }, confidence: unit, ...box }), ...timings },
      ['success', 'predictions', 'count'],
    ),
    action: {
      run: 'resource',
      resource: ({ served }) => served.byName('facerecognition'),
      params: (f) => ({ minConfidence: minConfidence(f, RECOGNIZE_MIN_CONFIDENCE) }),
      answer: (a, t) => recognizeAnswer(json(a, 'face-recognize'), t),
    },
  },
  {
    id: 'face-register',
    path: '/v1/vision/face/register',
    methods: ['POST'],
    images: 'many',
    fields: [userid('Whom the faces belong to.')],
    summary: 'Register faces of a user (one or more files, any field names)',
    description:
      'Adds the largest face of each file (fields `image`, `image0`..`imageN`, any names) to `userid`; earlier photos are kept. ' +
      '`{"success": true, "message": "face added", "userid", "added", "duplicates", "images": [{"field", "status"}]}`; no face in any file is 400 "No face found in image".',
    answerSchema: object(
      {
        success,
        message: { type: 'string', enum: ['face added', 'face already registered'] },
        userid: { type: 'string' },
        added: int,
        duplicates: int,
        images: { type: 'array', items: object({ field: { type: 'string' }, status: { enum: ['added', 'duplicate', 'no face', 'invalid image'] }, message: { type: 'string' } }, ['field', 'status']) },
      },
      ['success', 'message', 'userid', 'added', 'duplicates', 'images'],
    ),
    action: { run: 'body', answer: (body, signal, ctx) => registerFaces(withGallery(ctx, '/v1/vision/face/register'), body, signal) },
  },
  {
    id: 'face-list',
    path: '/v1/vision/face/list',
    methods: ['GET', 'POST'],
    images: 'none',
    fields: [],
    summary: 'Registered users',
    description: '`{"success": true, "faces": ["alice", "bob"], "users": [{"userid", "photos"}]}`.',
    answerSchema: object({ success, faces: { type: 'array', items: { type: 'string' } }, users: { type: 'array', items: object({ userid: { type: 'string' }, photos: int }) } }),
    action: { run: 'body', answer: (_body, _signal, ctx) => listUsers(withGallery(ctx, '/v1/vision/face/list')) },
  },
  {
    id: 'face-delete',
    path: '/v1/vision/face/delete',
    methods: ['POST'],
    images: 'none',
    fields: [userid('The user to delete with every photo of theirs (`userId` is accepted too).')],
    summary: 'Delete a registered user',
    description: 'Deletes the user\'s face descriptors (rows removed): `{"success": true, "deleted": 3}`; an unknown user is a success with 0, as in DeepStack.',
    answerSchema: object({ success, deleted: { ...int, description: 'Face descriptors removed (0 for an unknown user).' } }),
    action: { run: 'body', answer: (body, _signal, ctx) => deleteUser(withGallery(ctx, '/v1/vision/face/delete'), body) },
  },
  {
    id: 'face-match',
    path: '/v1/vision/face/match',
    methods: ['POST'],
    images: 'two',
    fields: [],
    summary: 'How alike the faces of two images are',
    description: 'Exactly two files (any field names): `{"success": true, "similarity": 0.83}`, the calibrated confidence of recognize (0..1).',
    answerSchema: object({ success, similarity: unit }),
    action: { run: 'body', answer: (body, signal, ctx) => matchFaces(withGallery(ctx, '/v1/vision/face/match'), body, signal) },
  },
  {
    id: 'scene',
    path: '/v1/vision/scene',
    methods: ['POST'],
    images: 'one',
    resource: 'predict',
    fields: [],
    summary: 'Scene recognition (top class of the classifier)',
    description:
      '`{"success": true, "label", "confidence"}`: the top class of the manifest\'s `scene` classifier when it names one (e.g. a Places365 model), else of /predict\'s ImageNet classifier, so labels are ImageNet names ("sports car"), not DeepStack\'s Places365 scenes.',
    answerSchema: object({ success, label: { type: 'string' }, confidence: unit, ...timings }, ['success', 'label', 'confidence']),
    action: { run: 'resource', resource: ({ served }) => served.scene, params: () => ({ top: 1 }), answer: (a, t) => sceneAnswer(json(a, 'scene'), t) },
  },
  {
    id: 'enhance',
    path: '/v1/vision/enhance',
    methods: ['POST'],
    images: 'one',
    resource: 'upscale',
    fields: [],
    summary: 'Super-resolution (DeepStack): the image upscaled, as base64 JPEG',
    description: '/upscale\'s model (ESPCN x3 by default): `{"success": true, "base64": "<JPEG>", "width", "height"}`, the size of the output.',
    answerSchema: object({ success, base64: { type: 'string', contentEncoding: 'base64', description: 'The upscaled image, JPEG.' }, width: int, height: int }),
    action: {
      run: 'resource',
      resource: ({ served }) => served.byName('upscale'),
      params: () => ({ format: 'jpeg' }),
      answer: async (a) => {
        const bytes = image(a, 'enhance');
        const { width, height } = await sharp(bytes).metadata();
        return { success: true, base64: bytes.toString('base64'), width, height };
      },
    },
  },
  {
    id: 'superresolution',
    path: '/v1/image/superresolution',
    methods: ['POST'],
    images: 'one',
    resource: 'upscale',
    fields: [],
    summary: 'Super-resolution (CodeProject.AI): the image upscaled, as base64 PNG',
    description: '/upscale\'s model (ESPCN x3 by default): `{"success": true, "imageBase64": "<PNG>", "inferenceMs", "processMs"}`.',
    answerSchema: object({ success, imageBase64: { type: 'string', contentEncoding: 'base64', description: 'The upscaled image, PNG.' }, ...timings }, ['success', 'imageBase64']),
    action: {
      run: 'resource',
      resource: ({ served }) => served.byName('upscale'),
      params: () => ({ format: 'png' }),
      answer: (a, t) => ({ success: true, imageBase64: image(a, 'superresolution').toString('base64'), ...t }),
    },
  },
  {
    id: 'alpr',
    path: '/v1/vision/alpr',
    aliases: ['/v1/image/alpr'],
    methods: ['POST'],
    images: 'one',
    resource: 'alpr',
    fields: [
      confidence(ALPR_MIN_CONFIDENCE, 'Lowest plate confidence reported'),
      { name: 'region', description: 'Plate layout rules (cvserve\'s own field): us, eu or any; default CVSERVE_ALPR_REGION (any).', schema: { type: 'string', enum: ['us', 'eu', 'any'] } },
    ],
    summary: 'Licence plate reader (CodeProject.AI ALPR)',
    description:
      '/alpr\'s plates as CodeProject.AI\'s ALPR module answers them: `{"success": true, "predictions": [{"label": "Plate: 7ABC123", "plate": "7ABC123", "confidence", "x_min", "y_min", "x_max", "y_max", "candidates", "vehicle"}], "count", "message", "inferenceMs", "processMs"}`. ' +
      'The image is the file field `upload` (CodeProject.AI\'s), `image`, or the first file. `/v1/image/alpr` is the legacy path.',
    answerSchema: object(
      {
        success,
        message: { type: 'string', description: 'CodeProject.AI\'s "Found Plate: ABC123, ..." or "No plates found".' },
        count: int,
        predictions: predictionsOf({
          label: { type: 'string', description: '"Plate: " and the plate.' },
          plate: { type: 'string' },
          confidence: unit,
          ...box,
          candidates: { type: 'array', items: object({ plate: { type: 'string' }, confidence: unit, matchesTemplate: { type: 'boolean' } }) },
        }),
        ...timings,
      },
      ['success', 'predictions', 'count'],
    ),
    action: {
      run: 'resource',
      resource: ({ served }) => served.byName('alpr'),
      params: (f) => ({ minConfidence: minConfidence(f, ALPR_MIN_CONFIDENCE), ...regionField(f) }),
      answer: (a, t) => alprAnswer(json(a, 'alpr'), t),
    },
  },
  {
    id: 'ocr',
    path: '/v1/vision/ocr',
    aliases: ['/v1/image/ocr'],
    methods: ['POST'],
    images: 'one',
    resource: 'ocr',
    fields: [confidence(OCR_MIN_CONFIDENCE, 'Lowest line confidence reported')],
    summary: 'Text recognition (CodeProject.AI OCR)',
    description:
      '/ocr\'s lines as CodeProject.AI\'s OCR module answers them: `{"success": true, "predictions": [{"label": "<text>", "confidence", "x_min", "y_min", "x_max", "y_max"}], "count", "message", "inferenceMs", "processMs"}`. ' +
      'The image is the file field `upload`, `image`, or the first file. `/v1/image/ocr` is the legacy path.',
    answerSchema: object(
      { success, message: { type: 'string' }, count: int, predictions: predictionsOf({ label: { type: 'string', description: 'The text of the line.' }, confidence: unit, ...box }), ...timings },
      ['success', 'predictions', 'count'],
    ),
    action: {
      run: 'resource',
      resource: ({ served }) => served.byName('ocr'),
      params: (f) => ({ minConfidence: minConfidence(f, OCR_MIN_CONFIDENCE) }),
      answer: (a, t) => ocrAnswer(json(a, 'ocr'), t),
    },
  },
  {
    id: 'ping',
    path: '/v1/status/ping',
    aliases: ['/v1/server/status/ping'],
    methods: ['GET'],
    open: true,
    images: 'none',
    fields: [],
    summary: 'Liveness (CodeProject.AI)',
    description: '`{"success": true}`; no key needed.',
    answerSchema: object({ success }),
    action: { run: 'static', answer: () => ({ success: true }) },
  },
  {
    id: 'update',
    path: '/v1/status/updateavailable',
    aliases: ['/v1/server/status/updateavailable'],
    methods: ['GET', 'POST'],
    open: true,
    images: 'none',
    fields: [],
    summary: 'Update check (Blue Iris asks): never an update',
    description: 'Answered locally, nothing is fetched: `{"success": true, "updateAvailable": false, "current": {...}, "latest": {...}}` with cvserve\'s version in both.',
    answerSchema: object(
      { success, message: { type: 'string' }, updateAvailable: { const: false }, current: { type: 'object' }, latest: { type: 'object' } },
      ['success', 'updateAvailable', 'current', 'latest'],
    ),
    action: { run: 'static', answer: updateAnswer },
  },
];
