import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { DynamicBatcher, type BatchRunner } from '../../src/engines/onnx/batcher.js';
import { OnnxEngine } from '../../src/engines/onnx/engine.js';
import type { Feeds, Outputs } from '../../src/engines/onnx/protocol.js';
import { ManualBatchTimer } from '../helpers/clock.js';
import { image, MODELS_DIR } from '../helpers/paths.js';

/** A model stand-in: output row i = input row i × 2, answered after `ms`; records batch sizes. */
function doubler(ms = 20): { run: BatchRunner; batches: number[] } {
  const batches: number[] = [];
  const run: BatchRunner = async (feeds) => {
    const x = feeds.x!;
    batches.push(x.dims[0]!);
    await new Promise((r) => setTimeout(r, ms));
    const data = Float32Array.from(x.data as Float32Array, (v) => v * 2);
    return { y: { data, dims: [...x.dims] } };
  };
  return { run, batches };
}

const item = (v: number, width = 3): Feeds => ({ x: { data: new Float32Array(width).fill(v), dims: [1, width] } });
const values = (o: Outputs) => [...o.y!.data];

describe('DynamicBatcher', () => {
  test('sends the first request alone and merges those that arrive while the worker is busy', async () => {
    const m = doubler();
    const b = new DynamicBatcher(m.run, { maxBatch: 8, maxWaitMs: 0, concurrency: 1 });
    const answers = await Promise.all([1, 2, 3, 4, 5].map((v) => b.run(item(v))));
    assert.deepEqual(m.batches, [1, 4]);
    assert.deepEqual(answers.map(values), [[2, 2, 2], [4, 4, 4], [6, 6, 6], [8, 8, 8], [10, 10, 10]]);
    for (const a of answers) assert.deepEqual(a.y!.dims, [1, 3]);
  });

  test('never exceeds maxBatch, and fills up to `concurrency` workers', async () => {
    const m = doubler();
    const b = new DynamicBatcher(m.run, { maxBatch: 3, maxWaitMs: 0, concurrency: 2 });
    const answers = await Promise.all(Array.from({ length: 11 }, (_, i) => b.run(item(i))));
    assert.ok(m.batches.every((n) => n <= 3), `batches ${m.batches}`);
    assert.equal(m.batches.reduce((a, n) => a + n, 0), 11);
    assert.deepEqual(m.batches.slice(0, 2), [1, 1], 'both workers start at once');
    assert.deepEqual(answers.map((a) => a.y!.data[0]), Array.from({ length: 11 }, (_, i) => i * 2));
  });

  test('waits for company while a worker is free, and sends what arrived when the wait ends', async () => {
    const m = doubler(1);
    const timer = new ManualBatchTimer();
    const b = new DynamicBatcher(m.run, { maxBatch: 8, maxWaitMs: 30, concurrency: 1, timer });
    const first = b.run(item(1));
    assert.deepEqual([timer.outstanding, timer.delays], [1, [30]], 'the first request starts a wait of maxWaitMs');
    const rest = [b.run(item(2)), b.run(item(3))];
    assert.deepEqual(m.batches, [], 'nothing is sent before the wait ends');
    assert.equal(timer.outstanding, 1, 'one wait per batch');
    timer.fire();
    await Promise.all([first, ...rest]);
    assert.deepEqual(m.batches, [3]);
  });

  test('a batch that fills up leaves at once, ending its wait', async () => {
    const m = doubler(1);
    const timer = new ManualBatchTimer();
    const b = new DynamicBatcher(m.run, { maxBatch: 3, maxWaitMs: 1000, concurrency: 1, timer });
    const answers = Promise.all([1, 2, 3].map((v) => b.run(item(v))));
    assert.deepEqual([m.batches, timer.outstanding], [[3], 0], 'sent as soon as it was full; its wait cancelled');
    assert.deepEqual((await answers).map((a) => a.y!.data[0]), [2, 4, 6]);
    assert.equal(timer.fire(), 0);
  });

  test('keeps different shapes apart', async () => {
    const m = doubler();
    const b = new DynamicBatcher(m.run, { maxBatch: 8, maxWaitMs: 0, concurrency: 1 });
    const out = await Promise.all([b.run(item(1)), b.run(item(2, 4)), b.run(item(3)), b.run(item(4, 4))]);
    assert.deepEqual(m.batches, [1, 2, 1], 'the first alone, then the two 4-wide ones together, then the other 3-wide');
    assert.deepEqual(out.map((o) => o.y!.dims), [[1, 3], [1, 4], [1, 3], [1, 4]]);
    assert.deepEqual(out.map((o) => o.y!.data[0]), [2, 4, 6, 8]);
  });

  test('drops a waiting request whose caller gave up, and reports runner failures to everyone in the batch', async () => {
    const m = doubler();
    const b = new DynamicBatcher(m.run, { maxBatch: 8, maxWaitMs: 0, concurrency: 1 });
    const first = b.run(item(1));
    const gone = new AbortController();
    const dropped = b.run(item(2), undefined, gone.signal);
    const kept = b.run(item(3));
    gone.abort(new Error('client left'));
    await assert.rejects(dropped, /client left/);
    assert.deepEqual(values(await kept), [6, 6, 6]);
    await first;
    assert.deepEqual(m.batches, [1, 1]);

    const failing = new DynamicBatcher(async () => {
      throw new Error('session failed');
    }, { maxBatch: 8, maxWaitMs: 5, concurrency: 1 });
    const results = await Promise.allSettled([failing.run(item(1)), failing.run(item(2))]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  });
});

/** MobileNetV2's input for a photo: shorter side 256 (lanczos3), centre crop 224, ImageNet mean/std, NCHW. */
async function mobilenetInput(file: string): Promise<Float32Array> {
  const resized = sharp(file).removeAlpha().resize(256, 256, { fit: 'outside' });
  const { info } = await resized.clone().raw().toBuffer({ resolveWithObject: true });
  const left = Math.floor((info.width - 224) / 2);
  const top = Math.floor((info.height - 224) / 2);
  const { data } = await resized.extract({ left, top, width: 224, height: 224 }).raw().toBuffer({ resolveWithObject: true });
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const out = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < 224 * 224; i++) for (let c = 0; c < 3; c++) out[c * 224 * 224 + i] = (data[i * 3 + c]! / 255 - mean[c]!) / std[c]!;
  return out;
}

const top5 = (scores: Float32Array) => [...scores.keys()].sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, 5);

describe('DynamicBatcher on MobileNetV2 int8 (real model)', () => {
  let engine: OnnxEngine;
  const id = 'mobilenet-batch-test';
  before(async () => {
    engine = new OnnxEngine({ workers: 1, threads: 2, maxQueue: 16, modelsDir: MODELS_DIR });
    await engine.load({ id, path: path.join(MODELS_DIR, 'mobilenetv2-12-int8.onnx'), warmup: { input: { dims: [1, 3, 224, 224], dtype: 'float32' } } });
  });
  after(() => engine.close());

  test('a batch of four photos gives the same logits as four runs of batch 1', async () => {
    const photos = ['test_face_processing.jpg', 'car.jpg', 'cat_small.jpg', 'car.jpg'];
    const inputs = await Promise.all(photos.map((p) => mobilenetInput(image(p))));
    const single: Float32Array[] = [];
    for (const x of inputs) {
      const out = await engine.run(id, { input: { data: x.slice(), dims: [1, 3, 224, 224] } });
      single.push(out.output!.data);
    }
    const sizes: number[] = [];
    const batcher = new DynamicBatcher(
      (feeds, outputs, signal) => {
        sizes.push(feeds.input!.dims[0]!);
        return engine.run(id, feeds, { outputs, signal });
      },
      { maxBatch: 8, maxWaitMs: 50, concurrency: 1 },
    );
    const batched = await Promise.all(inputs.map((x) => batcher.run({ input: { data: x.slice(), dims: [1, 3, 224, 224] } })));
    assert.deepEqual(sizes, [4], 'one session.run for all four');
    for (let i = 0; i < photos.length; i++) {
      const b = batched[i]!.output!;
      assert.deepEqual(b.dims, [1, 1000]);
      assert.deepEqual(top5(b.data), top5(single[i]!), `${photos[i]}: same top-5`);
      let maxDiff = 0;
      for (let k = 0; k < 1000; k++) maxDiff = Math.max(maxDiff, Math.abs(b.data[k]! - single[i]![k]!));
      assert.ok(maxDiff < 1e-4, `${photos[i]}: logits differ by ${maxDiff}`);
    }
    assert.equal(top5(batched[1]!.output!.data)[0], 817, 'car.jpg: sports car first');
  });
});

describe('DynamicBatcher backpressure', () => {
  test('refuses items beyond maxPending with the given error', async () => {
    const m = doubler();
    const b = new DynamicBatcher(m.run, { maxBatch: 8, maxWaitMs: 0, concurrency: 1, maxPending: 2, rejectFull: () => new Error('queue full') });
    const running = b.run(item(1)); // on the worker
    const waiting = [b.run(item(2)), b.run(item(3))];
    await assert.rejects(b.run(item(4)), /queue full/);
    await Promise.all([running, ...waiting]);
    assert.deepEqual(m.batches, [1, 2]);
  });

  test('maxPending 0 (CVSERVE_ONNX_MAX_QUEUE=0) serves whenever a worker is free and refuses only while all are busy', async () => {
    const m = doubler();
    const b = new DynamicBatcher(m.run, { maxBatch: 8, maxWaitMs: 0, concurrency: 1, maxPending: 0, rejectFull: () => new Error('queue full') });
    const running = b.run(item(1));
    await assert.rejects(b.run(item(2)), /queue full/);
    assert.deepEqual(values(await running), [2, 2, 2]);
    assert.deepEqual(values(await b.run(item(3))), [6, 6, 6], 'the worker is free again');
  });
});
