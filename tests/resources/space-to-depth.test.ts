import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { frigateFrame } from '../../scripts/deepstack-clients.js';
import { feedFrom } from '../../src/engines/onnx/free-dims.js';
import { jpegAddon } from '../../src/image/jpeg-decoder.js';
import { prepareImage } from '../../src/image/preprocess.js';
import { allocateBatch, packImage, packSpaceToDepth, packSpaceToDepthInJs, type PackSpec } from '../../src/image/pack.js';
import { loadManifest, parseManifest, type DetectModel, type Manifest } from '../../src/models/manifest.js';
import { createObjectDetectionResource, type ObjectDetectionResource } from '../../src/resources/object-detection.js';
import { parseParams } from '../../src/resources/validate.js';
import { imageInput, MODELS_DIR, onnxEngines, runContext, silentLog, type TestEngines } from '../engines/onnx-fixtures.js';
import { image, REPO_ROOT } from '../helpers/paths.js';

const PHOTOS = [image('car.jpg'), image('cat_small.jpg'), image('test_face_processing.jpg'), ...['astronaut', 'chelsea', 'coffee'].map((n) => path.join(REPO_ROOT, 'data', `${n}.jpg`))];
const shipped = () => loadManifest().models.find((m) => m.id === 'yolox-nano') as DetectModel;
const SESSION = { executionProviders: ['cpu'], intraOpNumThreads: 2, graphOptimizationLevel: 'all', logSeverityLevel: 3 } as const;

/** The shipped manifest with YOLOX-nano fed at its input, as the file is (no spaceToDepth). */
function wholeGraphManifest(): Manifest {
  const manifest = structuredClone(loadManifest());
  delete (manifest.models.find((m) => m.id === 'yolox-nano') as DetectModel).input.spaceToDepth;
  return parseManifest(manifest, 'test manifest');
}

const sameFloats = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

test('the addon packs the space-to-depth layout to exactly the floats JavaScript computes', async () => {
  assert.ok(jpegAddon()?.packFloat32SpaceToDepth, 'the addon packs');
  const { data, info } = await sharp(readFileSync(image('cat_small.jpg'))).resize(62, 38, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  const spec: PackSpec = { channels: 'RGB', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], layout: 'NCHW', dtype: 'float32' };
  // The shipped order, another order, and blocks that repeat (the addon's general loop).
  const orders = [shipped().input.spaceToDepth!.blocks, [[1, 1], [0, 1], [1, 0], [0, 0]], [[0, 0], [0, 0], [1, 1], [0, 1]]] as const;
  for (const blocks of orders) {
    for (const channels of ['RGB', 'BGR'] as const) {
      for (const index of [0, 1]) {
        const s = { ...spec, channels };
        const ours = packSpaceToDepth(data, info.width, info.height, s, blocks, allocateBatch('float32', 2, 62 * 38) as Float32Array, index);
        const theirs = packSpaceToDepthInJs(data, info.width, info.height, s, blocks, allocateBatch('float32', 2, 62 * 38) as Float32Array, index);
        assert.ok(sameFloats(ours, theirs), `blocks ${JSON.stringify(blocks)}, ${channels}, image ${index}`);
      }
    }
  }
  // YOLOX's own input size (the addon's 16-pair groups, no rest), and every byte value through each channel.
  const frame = await sharp(readFileSync(image('cat_small.jpg'))).resize(416, 416, { fit: 'fill' }).raw().toBuffer();
  const every = Uint8Array.from({ length: 64 * 4 * 3 }, (_, i) => (i * 7 + (i >> 8)) % 256);
  for (const [name, rgb, width, height] of [['416x416 frame', frame, 416, 416], ['every value', every, 64, 4]] as const) {
    for (const s of [spec, { ...spec, channels: 'BGR' as const, scale: 1, mean: [0, 0, 0] as const, std: [1, 1, 1] as const }]) {
      const ours = packSpaceToDepth(rgb, width, height, s, shipped().input.spaceToDepth!.blocks, new Float32Array(width * height * 3));
      const theirs = packSpaceToDepthInJs(rgb, width, height, s, shipped().input.spaceToDepth!.blocks, new Float32Array(width * height * 3));
      assert.ok(sameFloats(ours, theirs), `${name}, ${s.channels}`);
    }
  }
  // Block (dy, dx) of channel c at (x, y) is pixel (2x + dx, 2y + dy): the top-right block's first value.
  const one = packSpaceToDepth(data, 62, 38, { ...spec, scale: 1, mean: [0, 0, 0], std: [1, 1, 1] }, [[0, 0], [1, 0], [0, 1], [1, 1]], new Float32Array(62 * 38 * 3));
  assert.equal(one[2 * 3 * 31 * 19], data[3]);
  assert.throws(() => jpegAddon()!.packFloat32SpaceToDepth!(data, 61, 38, new Float32Array(62 * 38 * 3), 0, new Int32Array(8), 0, 1, 2, 1, 1, 1, 0, 0, 0), RangeError);
});

test('YOLOX-nano fed past its Focus layer gives bit-identical outputs to the whole graph on the reference frames', async () => {
  const model = shipped();
  const file = readFileSync(path.join(MODELS_DIR, model.file));
  const { tensor, blocks } = model.input.spaceToDepth!;
  const whole = await ort.InferenceSession.create(file, SESSION);
  const fed = await ort.InferenceSession.create(feedFrom(file, tensor, [1, 12, 208, 208]), SESSION);
  assert.deepEqual(fed.inputNames, [tensor]);
  const spec = { ...model.preprocess, layout: model.input.layout, dtype: model.input.dtype };
  for (const photo of PHOTOS) {
    const frame = await frigateFrame(readFileSync(photo), 320);
    const { rgb } = await prepareImage(await imageInput(frame), model.preprocess.resize, { width: 416, height: 416 });
    const a = (await whole.run({ images: new ort.Tensor('float32', packImage(rgb, 416 * 416, spec, new Float32Array(416 * 416 * 3)), [1, 3, 416, 416]) })).output!;
    const b = (await fed.run({ [tensor]: new ort.Tensor('float32', packSpaceToDepth(rgb, 416, 416, spec, blocks, new Float32Array(416 * 416 * 3)), [1, 12, 208, 208]) })).output!;
    assert.ok(sameFloats(a.data as Float32Array, b.data as Float32Array), `${path.basename(photo)}: same outputs`);
  }
  await Promise.all([whole.release(), fed.release()]);
});

test('feedFrom refuses a tensor no node computes, or one past which the input is still read', () => {
  const file = readFileSync(path.join(MODELS_DIR, shipped().file));
  assert.throws(() => feedFrom(file, 'nope', [1]), /no node computes nope/);
  // 672 is one of the Focus Slices: the other three still read the image.
  assert.throws(() => feedFrom(file, '672', [1, 3, 208, 208]), /images is used past 672/);
});

test('the manifest refuses spaceToDepth where it cannot apply', () => {
  const withS2d = (edit: (m: DetectModel) => void) => {
    const manifest = structuredClone(loadManifest());
    edit(manifest.models.find((m) => m.id === 'yolox-nano') as DetectModel);
    return () => parseManifest(manifest, 'x');
  };
  assert.throws(withS2d((m) => (m.input.layout = 'NHWC')), /float32 NCHW input of 3 channels/);
  assert.throws(withS2d((m) => (m.input.shape = [1, 3, 415, 416])), /even height and width/);
  assert.throws(withS2d((m) => (m.input.spaceToDepth!.blocks = [[0, 0], [0, 0], [0, 1], [1, 1]])), /four offsets/);
});

describe('detections with and without the Focus layer fed by cvserve', () => {
  const envs: TestEngines[] = [];
  let fed: ObjectDetectionResource;
  let whole: ObjectDetectionResource;

  const detector = async (manifest: Manifest) => {
    const env = onnxEngines({ manifest });
    envs.push(env);
    const detect = createObjectDetectionResource();
    await detect.init({ config: env.config, engines: env.engines, log: silentLog });
    assert.deepEqual(detect.status(), { ready: true });
    return detect;
  };

  before(async () => {
    fed = await detector(loadManifest());
    whole = await detector(wholeGraphManifest());
  });
  after(async () => {
    await Promise.all(envs.map((e) => e.close()));
  });

  test('the same answers on every reference frame and photo', async () => {
    let found = 0;
    for (const photo of PHOTOS) {
      for (const bytes of [await frigateFrame(readFileSync(photo), 320), readFileSync(photo)]) {
        const answer = async (d: ObjectDetectionResource) => {
          const result = await d.run(await imageInput(bytes), parseParams(d.params, { labels: 'all', threshold: 0.1 }), runContext());
          assert.ok(result.kind === 'json');
          return result.body as { result: unknown[] };
        };
        const ours = await answer(fed);
        assert.deepEqual(ours, await answer(whole), path.basename(photo));
        found += ours.result.length;
      }
    }
    assert.ok(found > 20, `${found} detections compared`);
  });
});
