/**
 * The DeepStack / CodeProject.AI routes cvserve answers, as data: the router mounts them and the
 * OpenAPI document describes them from this one table. Paths match case-insensitively and with or
 * without a trailing slash (as CodeProject.AI does; DeepStack's face detection is `/v1/vision/face/`).
 */

export type DeepstackRouteKind =
  | 'detection'
  | 'custom'
  | 'custom-list'
  | 'face'
  | 'face-recognize'
  | 'face-register'
  | 'face-list'
  | 'face-delete'
  | 'face-match'
  | 'scene'
  | 'superresolution'
  | 'enhance'
  | 'alpr'
  | 'ocr'
  | 'ping'
  | 'update';

/** A form field (also accepted in the query string) a route reads. */
export interface DeepstackField {
  name: string;
  description: string;
  schema: Record<string, unknown>;
  required?: boolean;
}

export interface DeepstackRoute {
  kind: DeepstackRouteKind;
  /** Express path; `:model` is the custom model's name. */
  path: string;
  /** Other paths answering the same (CodeProject.AI's `/v1/server/status/...`). */
  aliases?: readonly string[];
  methods: readonly ('GET' | 'POST')[];
  /** Answers without an API key, as /ping does: status routes carry no data. */
  open?: boolean;
  /** Which files the route takes. */
  images: 'one' | 'two' | 'many' | 'none';
  /** The native resource it runs through the pipeline, if any (for the docs). */
  resource?: string;
  fields: readonly DeepstackField[];
  summary: string;
  description: string;
}

/** DeepStack's and CodeProject.AI's default for object detection (`server.go`, `detect_adapter.py`). */
export const DETECTION_MIN_CONFIDENCE = 0.4;
/** DeepStack's default for face detection (`server.go:180-186`). */
export const FACE_MIN_CONFIDENCE = 0.55;
/** DeepStack's and CodeProject.AI's default for face recognition. */
export const RECOGNIZE_MIN_CONFIDENCE = 0.67;
/** DeepStack raises any smaller min_confidence to this (`process.py:50`). */
export const MIN_CONFIDENCE_FLOOR = 0.1;
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

export const DEEPSTACK_ROUTES: readonly DeepstackRoute[] = [
  {
    kind: 'detection',
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
  },
  {
    kind: 'custom-list',
    path: '/v1/vision/custom/list',
    methods: ['GET', 'POST'],
    images: 'none',
    fields: [],
    summary: 'Custom models: the detectors of the model manifest',
    description: 'The names `/v1/vision/custom/<name>` answers to: every detector of the model manifest, by its id. `{"success": true, "models": ["yolox-nano", ...]}`.',
  },
  {
    kind: 'custom',
    path: '/v1/vision/custom/:model',
    methods: ['POST'],
    images: 'one',
    fields: [confidence(DETECTION_MIN_CONFIDENCE, 'Lowest confidence reported')],
    summary: 'Object detection with a custom model (any detector of the manifest)',
    description:
      'Runs the manifest detector named `model` (its id, case ignored: YOLOX, SSD, YOLOv5 or YOLOv8/YOLO11 exports) and answers as /v1/vision/detection. ' +
      'An unknown name is 404.',
  },
  {
    kind: 'face',
    path: '/v1/vision/face',
    methods: ['POST'],
    images: 'one',
    resource: 'facedetection',
    fields: [confidence(FACE_MIN_CONFIDENCE, 'Lowest face detector score reported')],
    summary: 'Face detection (SSD face detector, real confidences)',
    description:
      'Faces found by the SSD face detector of /facedetection, largest first: `{"success": true, "predictions": [{"confidence", "x_min", "y_min", "x_max", "y_max"}], "count"}` (no label, as DeepStack). ' +
      'The confidence is the detector\'s own score.',
  },
  {
    kind: 'face-recognize',
    path: '/v1/vision/face/recognize',
    methods: ['POST'],
    images: 'one',
    resource: 'facerecognition',
    fields: [confidence(RECOGNIZE_MIN_CONFIDENCE, 'A face is its nearest registered user from this confidence on, else "unknown"')],
    summary: 'Face recognition against the registered users',
    description:
      'Every face with its registered user or "unknown": `{"success": true, "predictions": [{"userid", "confidence", "x_min", "y_min", "x_max", "y_max"}], "count"}`. ' +
      'A photo without faces answers success with no predictions.',
  },
  {
    kind: 'face-register',
    path: '/v1/vision/face/register',
    methods: ['POST'],
    images: 'many',
    fields: [userid('Whom the faces belong to.')],
    summary: 'Register faces of a user (one or more files, any field names)',
    description:
      'Adds the largest face of each file (fields `image`, `image0`..`imageN`, any names) to `userid`; earlier photos are kept. ' +
      '`{"success": true, "message": "face added", "userid", "added", "duplicates", "images": [{"field", "status"}]}`; no face in any file is 400 "No face found in image".',
  },
  {
    kind: 'face-list',
    path: '/v1/vision/face/list',
    methods: ['GET', 'POST'],
    images: 'none',
    fields: [],
    summary: 'Registered users',
    description: '`{"success": true, "faces": ["alice", "bob"], "users": [{"userid", "photos"}]}`.',
  },
  {
    kind: 'face-delete',
    path: '/v1/vision/face/delete',
    methods: ['POST'],
    images: 'none',
    fields: [userid('The user to delete with every photo of theirs (`userId` is accepted too).')],
    summary: 'Delete a registered user',
    description: 'Deletes the user\'s face descriptors (rows removed): `{"success": true, "deleted": 3}`; an unknown user is a success with 0, as in DeepStack.',
  },
  {
    kind: 'face-match',
    path: '/v1/vision/face/match',
    methods: ['POST'],
    images: 'two',
    fields: [],
    summary: 'How alike the faces of two images are',
    description: 'Exactly two files (any field names): `{"success": true, "similarity": 0.83}`, the calibrated confidence of recognize (0..1).',
  },
  {
    kind: 'scene',
    path: '/v1/vision/scene',
    methods: ['POST'],
    images: 'one',
    resource: 'predict',
    fields: [],
    summary: 'Scene recognition (top class of the classifier)',
    description:
      '`{"success": true, "label", "confidence"}`: the top class of the manifest\'s `scene` classifier when it names one (e.g. a Places365 model), else of /predict\'s ImageNet classifier, so labels are ImageNet names ("sports car"), not DeepStack\'s Places365 scenes.',
  },
  {
    kind: 'enhance',
    path: '/v1/vision/enhance',
    methods: ['POST'],
    images: 'one',
    resource: 'upscale',
    fields: [],
    summary: 'Super-resolution (DeepStack): the image upscaled, as base64 JPEG',
    description: '/upscale\'s model (ESPCN x3 by default): `{"success": true, "base64": "<JPEG>", "width", "height"}`, the size of the output.',
  },
  {
    kind: 'superresolution',
    path: '/v1/image/superresolution',
    methods: ['POST'],
    images: 'one',
    resource: 'upscale',
    fields: [],
    summary: 'Super-resolution (CodeProject.AI): the image upscaled, as base64 PNG',
    description: '/upscale\'s model (ESPCN x3 by default): `{"success": true, "imageBase64": "<PNG>", "inferenceMs", "processMs"}`.',
  },
  {
    kind: 'alpr',
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
  },
  {
    kind: 'ocr',
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
  },
  {
    kind: 'ping',
    path: '/v1/status/ping',
    aliases: ['/v1/server/status/ping'],
    methods: ['GET'],
    open: true,
    images: 'none',
    fields: [],
    summary: 'Liveness (CodeProject.AI)',
    description: '`{"success": true}`; no key needed.',
  },
  {
    kind: 'update',
    path: '/v1/status/updateavailable',
    aliases: ['/v1/server/status/updateavailable'],
    methods: ['GET', 'POST'],
    open: true,
    images: 'none',
    fields: [],
    summary: 'Update check (Blue Iris asks): never an update',
    description: 'Answered locally, nothing is fetched: `{"success": true, "updateAvailable": false, "current": {...}, "latest": {...}}` with cvserve\'s version in both.',
  },
];
