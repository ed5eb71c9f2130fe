import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPredictResource, type PredictResource } from '../../src/resources/predict.js';
import { parseParams } from '../../src/resources/validate.js';
import { imageInput, onnxEngines, runContext, silentLog, type TestEngines } from '../engines/onnx-fixtures.js';
import { image } from '../helpers/paths.js';

type Prediction = { label: string; probability: number };

/** MANIFEST.md §1, resize-256 + centre-crop-224: top-5 labels (ids in the comments) and probabilities. */
const MANIFEST_TOP5: Record<string, [string, number][]> = {
  // 285, 284, 750, 434, 281
  'cat_small.jpg': [['Egyptian cat', 0.345], ['Siamese cat', 0.213], ['quilt', 0.082], ['bath towel', 0.07], ['tabby', 0.059]],
  // 817, 656, 511, 479, 436
  'car.jpg': [['sports car', 0.367], ['minivan', 0.227], ['convertible', 0.165], ['car wheel', 0.102], ['beach wagon', 0.074]],
  // 981, 652, 697, 890, 430
  'test_face_processing.jpg': [['ballplayer', 0.436], ['military uniform', 0.316], ['pajama', 0.054], ['volleyball', 0.015], ['basketball', 0.011]],
};
const CAT_CLASSES = ['tabby', 'tiger cat', 'Egyptian cat', 'Siamese cat', 'Persian cat'];

describe('/predict (MobileNetV2 int8) at resource level', () => {
  let env: TestEngines;
  let predict: PredictResource;

  before(async () => {
    env = onnxEngines();
    predict = createPredictResource();
    await predict.init({ config: env.config, engines: env.engines, log: silentLog });
    assert.deepEqual(predict.status(), { ready: true });
  });
  after(() => env.close());

  const run = async (file: string, top = 5) => {
    const result = await predict.run(await imageInput(image(file)), { top }, runContext());
    assert.equal(result.kind, 'json');
    const body = (result as unknown as { body: { success: boolean; predictions: Prediction[] } }).body;
    assert.equal(body.success, true);
    assert.ok(predict.output.schema.safeParse(body).success, 'matches the declared schema');
    return body.predictions;
  };

  test('cat_small.jpg: a cat class first', async () => {
    const [first] = await run('cat_small.jpg');
    assert.ok(CAT_CLASSES.includes(first!.label), first!.label);
  });

  test('car.jpg: sports car first', async () => {
    const [first] = await run('car.jpg');
    assert.equal(first!.label, 'sports car');
  });

  for (const [file, expected] of Object.entries(MANIFEST_TOP5)) {
    test(`${file}: top-5 classes and probabilities as in MANIFEST.md`, async () => {
      const got = await run(file);
      assert.deepEqual(got.map((p) => p.label), expected.map(([label]) => label));
      got.forEach((p, i) => assert.ok(Math.abs(p.probability - expected[i]![1]) <= 0.0015, `${p.label}: ${p.probability} vs ${expected[i]![1]}`));
    });
  }

  test('top chooses how many, best first', async () => {
    assert.equal((await run('car.jpg', 1)).length, 1);
    const twenty = await run('car.jpg', 20);
    assert.equal(twenty.length, 20);
    for (let i = 1; i < twenty.length; i++) assert.ok(twenty[i - 1]!.probability >= twenty[i]!.probability);
    assert.ok(twenty.reduce((s, p) => s + p.probability, 0) <= 1.0001);
  });

  test('top is bounded to 1..20 with a default of 5', () => {
    assert.deepEqual(parseParams(predict.params, {}), { top: 5 });
    assert.deepEqual(parseParams(predict.params, { top: '20' }), { top: 20 });
    assert.throws(() => parseParams(predict.params, { top: '0' }), /top/);
    assert.throws(() => parseParams(predict.params, { top: '21' }), /top/);
  });
});
