import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createObjectDetectionResource } from '../../src/resources/object-detection.js';
import { parseParams } from '../../src/resources/validate.js';
import { constant, encodeModel } from '../engines/onnx-graph.js';
import { imageInput, onnxEngines, runContext, silentLog, tempModels, type TestEngines } from '../engines/onnx-fixtures.js';

/**
 * An SSD-style detector as the ONNX Model Zoo's SSD-MobileNet exports it (uint8 NHWC input;
 * detection_boxes [1,N,4] as normalized ymin,xmin,ymax,xmax; detection_scores; detection_classes,
 * 1-based; num_detections), built here from Constant nodes so its outputs are known exactly.
 */
const N = 5;
const boxes = [
  [0.1, 0.2, 0.5, 0.6], // cat 0.9 → [40, 10, 120, 50] on a 200x100 image
  [0.12, 0.22, 0.5, 0.6], // cat 0.6, overlaps the first: removed by NMS
  [0.5, 0.5, 0.9, 0.9], // dog 0.5 → [100, 50, 180, 90]
  [0, 0, 0.1, 0.1], // cat 0.2 → [0, 0, 20, 10], below the default threshold
  [0, 0, 1, 1], // person 0.99, but beyond num_detections: padding
];
const scores = [0.9, 0.6, 0.5, 0.2, 0.99];
const classes = [2, 2, 3, 2, 1];

function ssdModel(): Uint8Array {
  return encodeModel({
    nodes: [
      constant('detection_boxes', { dims: [1, N, 4], type: 'float32', values: boxes.flat() }),
      constant('detection_scores', { dims: [1, N], type: 'float32', values: scores }),
      constant('detection_classes', { dims: [1, N], type: 'float32', values: classes }),
      constant('num_detections', { dims: [1], type: 'float32', values: [4] }),
    ],
    inputs: [{ name: 'image_tensor', type: 'uint8', dims: [1, 300, 300, 3] }],
    outputs: [
      { name: 'detection_boxes', type: 'float32', dims: [1, N, 4] },
      { name: 'detection_scores', type: 'float32', dims: [1, N] },
      { name: 'detection_classes', type: 'float32', dims: [1, N] },
      { name: 'num_detections', type: 'float32', dims: [1] },
    ],
  });
}

const ssdEntry = (id: string, nmsIou: number | null) => ({
  id,
  file: 'ssd.onnx',
  task: 'detect',
  labels: 'labels.txt',
  input: { name: 'image_tensor', shape: [1, 300, 300, 3], layout: 'NHWC', dtype: 'uint8' },
  preprocess: { resize: { mode: 'stretch' }, channels: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
  decoder: {
    family: 'ssd',
    outputs: { boxes: 'detection_boxes', scores: 'detection_scores', classes: 'detection_classes', count: 'num_detections' },
    boxFormat: 'yxyx',
    normalized: true,
    classOffset: -1,
    nmsIou,
  },
});

describe('/catdetection with an SSD-style model from the manifest (self-built graph)', () => {
  let env: TestEngines;
  let cleanup: () => Promise<void>;
  let picture: Buffer;

  before(async () => {
    const models = await tempModels(
      [
        { file: 'ssd.onnx', data: ssdModel(), kind: 'onnx' },
        { file: 'labels.txt', data: 'person\ncat\ndog\n', kind: 'labels' },
      ],
      { models: [ssdEntry('ssd-test', 0.45), ssdEntry('ssd-nonms', null)] as never, routes: { catdetection: 'ssd-test' } },
    );
    cleanup = models.cleanup;
    env = onnxEngines({ dir: models.dir, manifest: models.manifest });
    picture = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#808080' } }).png().toBuffer();
  });
  after(async () => {
    await env.close();
    await cleanup();
  });

  const detect = async (fields: Record<string, unknown>, modelId?: string) => {
    const resource = createObjectDetectionResource({ modelId });
    await resource.init({ config: env.config, engines: env.engines, log: silentLog });
    assert.deepEqual(resource.status(), { ready: true });
    const result = await resource.run(await imageInput(picture), parseParams(resource.params, fields), runContext());
    assert.ok(result.kind === 'json');
    return (result.body as { result: unknown[] }).result;
  };

  test('defaults: the cat, boxes mapped from normalized yxyx to image pixels, NMS applied, padding rows ignored', async () => {
    assert.deepEqual(await detect({}), [{ box: [40, 10, 120, 50], label: 'cat', score: 0.9 }]);
  });

  test('labels=all and a lower threshold', async () => {
    assert.deepEqual(await detect({ labels: 'all' }), [
      { box: [40, 10, 120, 50], label: 'cat', score: 0.9 },
      { box: [100, 50, 180, 90], label: 'dog', score: 0.5 },
    ]);
    assert.deepEqual(await detect({ labels: 'all', threshold: 0.1 }), [
      { box: [40, 10, 120, 50], label: 'cat', score: 0.9 },
      { box: [100, 50, 180, 90], label: 'dog', score: 0.5 },
      { box: [0, 0, 20, 10], label: 'cat', score: 0.2 },
    ]);
  });

  test('nmsIou null trusts the model’s own NMS', async () => {
    assert.deepEqual(await detect({}, 'ssd-nonms'), [
      { box: [40, 10, 120, 50], label: 'cat', score: 0.9 },
      { box: [44, 12, 120, 50], label: 'cat', score: 0.6 },
    ]);
  });
});
