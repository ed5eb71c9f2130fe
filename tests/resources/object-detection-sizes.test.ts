import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { frigateFrame } from '../../scripts/deepstack-clients.js';
import { freeModelDims } from '../../src/engines/onnx/free-dims.js';
import { loadManifest, parseManifest, type Manifest } from '../../src/models/manifest.js';
import { createObjectDetectionResource, type ObjectDetectionResource } from '../../src/resources/object-detection.js';
import { runSize } from '../../src/resources/onnx/model-resource.js';
import { parseParams } from '../../src/resources/validate.js';
import { imageInput, MODELS_DIR, onnxEngines, runContext, silentLog, type TestEngines } from '../engines/onnx-fixtures.js';
import { boxIoU } from '../helpers/images.js';
import { image, REPO_ROOT } from '../helpers/paths.js';

type Found = { box: [number, number, number, number]; label: string; score: number };

/** Frigate's 320x320 frames (centre crop, PIL quality 75) of every photo here. */
const PHOTOS = [image('car.jpg'), image('cat_small.jpg'), image('test_face_processing.jpg'), path.join(REPO_ROOT, 'data', 'astronaut.jpg'), path.join(REPO_ROOT, 'data', 'chelsea.jpg'), path.join(REPO_ROOT, 'data', 'coffee.jpg')];

/** The shipped manifest with YOLOX-nano's input sizes set to `sizes` (none: every frame letterboxed to 416). */
function manifestWith(sizes?: number[]): Manifest {
  const manifest = structuredClone(loadManifest());
  const model = manifest.models.find((m) => m.id === 'yolox-nano')!;
  if (sizes) model.input.sizes = sizes;
  else delete model.input.sizes;
  return parseManifest(manifest, 'test manifest');
}

/**
 * What Frigate keeps (score ≥ 0.4) found both ways: same label, box IoU ≥ 0.85, score within 0.1.
 * Returns the first difference, or null when the two answers are equivalent.
 */
function difference(a: Found[], b: Found[]): string | null {
  for (const [ours, theirs, side] of [[a, b, 'a→b'], [b, a, 'b→a']] as const) {
    for (const d of ours.filter((x) => x.score >= 0.4)) {
      const match = theirs.filter((t) => t.label === d.label).sort((x, y) => boxIoU(y.box, d.box) - boxIoU(x.box, d.box))[0];
      if (!match) return `${side}: no ${d.label} for ${d.score}`;
      if (boxIoU(match.box, d.box) < 0.85) return `${side}: ${d.label} IoU ${boxIoU(match.box, d.box).toFixed(3)}`;
      if (Math.abs(match.score - d.score) > 0.1) return `${side}: ${d.label} ${d.score} vs ${match.score}`;
    }
  }
  return null;
}

describe("YOLOX-nano at a 320x320 frame's own size", () => {
  let own: { env: TestEngines; detect: ObjectDetectionResource; dims: number[][] };
  let fixed: { env: TestEngines; detect: ObjectDetectionResource; dims: number[][] };
  const frames = new Map<string, Buffer>();

  const setUp = async (manifest: Manifest) => {
    const env = onnxEngines({ manifest });
    const dims: number[][] = [];
    const onnx = env.engines.onnx;
    const run = onnx.run.bind(onnx);
    onnx.run = (id, feeds, options) => {
      dims.push(Object.values(feeds)[0]!.dims);
      return run(id, feeds, options);
    };
    const detect = createObjectDetectionResource();
    await detect.init({ config: env.config, engines: env.engines, log: silentLog });
    assert.deepEqual(detect.status(), { ready: true });
    return { env, detect, dims };
  };

  before(async () => {
    own = await setUp(manifestWith([320]));
    fixed = await setUp(manifestWith());
    for (const file of PHOTOS) frames.set(path.basename(file), await frigateFrame(readFileSync(file), 320));
  });
  after(async () => {
    await own.env.close();
    await fixed.env.close();
  });

  const detections = async (r: typeof own, frame: Buffer): Promise<Found[]> => {
    const result = await r.detect.run(await imageInput(frame), parseParams(r.detect.params, { labels: 'all', threshold: 0.3 }), runContext());
    assert.ok(result.kind === 'json');
    return (result.body as { result: Found[] }).result;
  };

  test('only square images no larger than a declared size run at it', () => {
    const model = manifestWith([320]).models.find((m) => m.id === 'yolox-nano')!;
    const fixedSize = { width: 416, height: 416 };
    assert.deepEqual(runSize(model, fixedSize, { width: 320, height: 320 }), { width: 320, height: 320 });
    assert.deepEqual(runSize(model, fixedSize, { width: 300, height: 300 }), { width: 320, height: 320 });
    assert.deepEqual(runSize(model, fixedSize, { width: 321, height: 321 }), fixedSize);
    assert.deepEqual(runSize(model, fixedSize, { width: 320, height: 240 }), fixedSize);
    assert.deepEqual(runSize(model, fixedSize, { width: 2372, height: 1334 }), fixedSize);
  });

  test('the manifest refuses sizes the graph cannot take or a batcher would mix', () => {
    assert.throws(() => manifestWith([330]), /multiples of the largest stride \(32\)/);
    assert.throws(() => manifestWith([416]), /smaller than the square input/);
    const batched = structuredClone(loadManifest());
    const classifier = batched.models.find((m) => m.id === 'mobilenetv2-12-int8')!;
    classifier.input.sizes = [192];
    assert.throws(() => parseManifest(batched, 'x'), /for letterboxed detectors/);
  });

  test('a 320x320 frame runs the model at 320 when declared (warmed up at both sizes), at 416 otherwise', async () => {
    const frame = frames.get('car.jpg')!;
    own.dims.length = 0;
    fixed.dims.length = 0;
    await detections(own, frame);
    await detections(own, await frigateFrame(readFileSync(image('car.jpg')), 416));
    await detections(fixed, frame);
    // Fed past YOLOX's Focus layer (the manifest's spaceToDepth): 12 channels at half the size.
    assert.deepEqual(own.dims, [[1, 12, 160, 160], [1, 12, 208, 208]]);
    assert.deepEqual(fixed.dims, [[1, 12, 208, 208]]);
  });

  // The shipped manifest declares 320 for YOLOX-nano only if its answers there are equivalent to
  // the letterboxed 416 ones on every reference frame. Measured (issue 24): they are not (chelsea:
  // cat 0.64 at 320, dog 0.73 at 416; test_face_processing: 13 people over 0.4 at 320, 16 at 416;
  // car: the 0.56 truck only at 416), so it ships without; a deployment may declare it in its own manifest.
  test('the shipped manifest declares 320 exactly when the reference frames give equivalent detections there', async () => {
    const differences: string[] = [];
    for (const file of PHOTOS.map((f) => path.basename(f))) {
      const found = difference(await detections(own, frames.get(file)!), await detections(fixed, frames.get(file)!));
      if (found) differences.push(`${file}: ${found}`);
    }
    const declared = loadManifest().models.find((m) => m.id === 'yolox-nano')!.input.sizes?.includes(320) ?? false;
    assert.equal(declared, differences.length === 0, differences.join('; ') || 'equivalent on every frame');
  });
});

describe('freeModelDims', () => {
  const file = path.join(MODELS_DIR, 'yolox_nano.onnx');

  test('the freed YOLOX-nano gives the same numbers at 416 and runs at 320 (2100 anchors)', async () => {
    const bytes = readFileSync(file);
    const original = await ort.InferenceSession.create(bytes);
    const freed = await ort.InferenceSession.create(freeModelDims(bytes, { images: [2, 3] }));
    const x = new Float32Array(3 * 416 * 416).map((_, i) => (i * 7919) % 256);
    const a = await original.run({ images: new ort.Tensor('float32', x, [1, 3, 416, 416]) });
    const b = await freed.run({ images: new ort.Tensor('float32', x, [1, 3, 416, 416]) });
    assert.deepEqual(b.output!.dims, a.output!.dims);
    assert.ok((a.output!.data as Float32Array).every((v, i) => v === (b.output!.data as Float32Array)[i]), 'identical outputs');
    const small = await freed.run({ images: new ort.Tensor('float32', new Float32Array(3 * 320 * 320), [1, 3, 320, 320]) });
    assert.deepEqual(small.output!.dims, [1, 2100, 85]);
    await assert.rejects(original.run({ images: new ort.Tensor('float32', new Float32Array(3 * 320 * 320), [1, 3, 320, 320]) }));
    await Promise.all([original.release(), freed.release()]);
  });

  test('an input the graph does not declare is an error, not a silent no-op', () => {
    assert.throws(() => freeModelDims(readFileSync(file), { input: [2, 3] }), /declares 0 of the 1 inputs/);
  });
});
