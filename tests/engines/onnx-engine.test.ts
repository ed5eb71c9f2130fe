import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OnnxEngine } from '../../src/engines/onnx/engine.js';
import { sessionOptions } from '../../src/engines/onnx/session-options.js';
import { AppError } from '../../src/errors.js';
import { constant, encodeModel } from './onnx-graph.js';
import { MODELS_DIR } from './onnx-fixtures.js';

const MOBILENET = path.join(MODELS_DIR, 'mobilenetv2-12-int8.onnx');
const ESPCN = path.join(MODELS_DIR, 'espcn-x3.onnx');
const mobilenetWarmup = { input: { dims: [1, 3, 224, 224], dtype: 'float32' as const } };

/** A deterministic, non-constant input image tensor. */
function pattern(batch: number, seed: number): Float32Array {
  const data = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.001 * seed) * 2;
  return data;
}

describe('OnnxEngine', () => {
  let engine: OnnxEngine;
  let tmp: string;

  before(async () => {
    engine = new OnnxEngine({ workers: 1, threads: 2, maxQueue: 0, modelsDir: MODELS_DIR });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'cvserve-onnx-'));
    await engine.load({ id: 'mobilenet', path: MOBILENET, warmup: mobilenetWarmup });
  });

  after(async () => {
    await engine.close();
    await rm(tmp, { recursive: true, force: true });
  });

  test('runs a model on a worker, moving the feed buffer there and the output back', async () => {
    const feed = pattern(1, 1);
    const out = await engine.run('mobilenet', { input: { data: feed, dims: [1, 3, 224, 224] } });
    assert.deepEqual(out.output!.dims, [1, 1000]);
    assert.ok(out.output!.data instanceof Float32Array);
    assert.equal(out.output!.data.length, 1000);
    assert.equal(feed.byteLength, 0, 'the feed buffer was transferred, not copied');
    assert.equal(engine.loadTimes('mobilenet').length, 1, 'one session per worker');
  });

  test('a batch gives the same rows as single runs (the batch dimension is free)', async () => {
    const a = pattern(1, 1);
    const b = pattern(1, 2);
    const both = new Float32Array(a.length * 2);
    both.set(a);
    both.set(b, a.length);
    const [single1, single2, batch] = [
      await engine.run('mobilenet', { input: { data: a.slice(), dims: [1, 3, 224, 224] } }),
      await engine.run('mobilenet', { input: { data: b.slice(), dims: [1, 3, 224, 224] } }),
      await engine.run('mobilenet', { input: { data: both, dims: [2, 3, 224, 224] } }),
    ];
    assert.deepEqual(batch.output!.dims, [2, 1000]);
    assert.deepEqual(Array.from(batch.output!.data.subarray(0, 1000)), Array.from(single1.output!.data));
    assert.deepEqual(Array.from(batch.output!.data.subarray(1000)), Array.from(single2.output!.data));
  });

  test('each model has its own bounded queue: a full one answers QUEUE_FULL, others keep working', async () => {
    await engine.load({ id: 'espcn', path: ESPCN, warmup: { input: { dims: [1, 1, 224, 224], dtype: 'float32' } } });
    const busy = engine.run('espcn', { input: { data: new Float32Array(4 * 224 * 224), dims: [4, 1, 224, 224] } });
    // maxQueue is 0 and the one espcn worker is busy.
    await assert.rejects(
      engine.run('espcn', { input: { data: new Float32Array(224 * 224), dims: [1, 1, 224, 224] } }),
      (err: unknown) => err instanceof AppError && err.code === 'QUEUE_FULL' && err.headers['Retry-After'] === '1',
    );
    const other = await engine.run('mobilenet', { input: { data: pattern(1, 3), dims: [1, 3, 224, 224] } });
    assert.deepEqual(other.output!.dims, [1, 1000]);
    const out = await busy;
    assert.deepEqual(out.output!.dims, [4, 1, 672, 672]);
    const stats = engine.stats();
    assert.deepEqual(stats.map((s) => s.name).sort(), ['onnx:espcn', 'onnx:mobilenet']);
    assert.equal(stats.find((s) => s.name === 'onnx:espcn')!.rejected, 1);
    assert.equal(stats.find((s) => s.name === 'onnx:mobilenet')!.rejected, 0);
  });

  test('inference does not block the event loop', async () => {
    const events: string[] = [];
    const run = engine.run('espcn', { input: { data: new Float32Array(8 * 224 * 224), dims: [8, 1, 224, 224] } }).then(() => events.push('inference done'));
    // Had session.run executed on this thread, the call would have blocked until it finished and
    // the inference would settle before any timer could fire.
    setTimeout(() => events.push('timer'), 0);
    await run;
    assert.deepEqual(events, ['timer', 'inference done']);
  });

  test('a file that is not an ONNX model fails to load and is forgotten', async () => {
    const bad = path.join(tmp, 'bad.onnx');
    await writeFile(bad, 'not a model');
    await assert.rejects(engine.load({ id: 'bad', path: bad, warmup: {} }), /onnx:bad worker failed to start: .*Protobuf parsing failed/);
    assert.equal(engine.has('bad'), false);
    await assert.rejects(engine.run('bad', {}), (err: unknown) => err instanceof AppError && err.code === 'MODEL_UNAVAILABLE');
  });

  test('runs a hand-built graph with a uint8 NHWC input; int64 outputs arrive as float32', async () => {
    const file = path.join(tmp, 'consts.onnx');
    await writeFile(
      file,
      encodeModel({
        nodes: [constant('scores', { dims: [1, 3], type: 'float32', values: [0.9, 0.5, 0.25] }), constant('count', { dims: [1], type: 'int64', values: [2] })],
        inputs: [{ name: 'image', type: 'uint8', dims: [1, 4, 4, 3] }],
        outputs: [
          { name: 'scores', type: 'float32', dims: [1, 3] },
          { name: 'count', type: 'int64', dims: [1] },
        ],
      }),
    );
    await engine.load({ id: 'consts', path: file, warmup: { image: { dims: [1, 4, 4, 3], dtype: 'uint8' } } });
    const out = await engine.run('consts', { image: { data: new Uint8Array(48), dims: [1, 4, 4, 3] } });
    assert.deepEqual(Array.from(out.scores!.data), [0.9, 0.5, 0.25].map(Math.fround));
    assert.ok(out.count!.data instanceof Float32Array);
    assert.deepEqual(Array.from(out.count!.data), [2]);
  });
});

describe('OnnxEngine with the CPU memory arena off (CVSERVE_ONNX_MEMORY_ARENA=off)', () => {
  let arena: OnnxEngine;
  let noArena: OnnxEngine;
  before(async () => {
    arena = new OnnxEngine({ workers: 1, threads: 2, maxQueue: 0, modelsDir: MODELS_DIR });
    noArena = new OnnxEngine({ workers: 1, threads: 2, maxQueue: 0, modelsDir: MODELS_DIR, memoryArena: false });
    await Promise.all([arena, noArena].map((e) => e.load({ id: 'mobilenet', path: MOBILENET, warmup: mobilenetWarmup })));
  });
  after(async () => {
    await Promise.all([arena.close(), noArena.close()]);
  });

  test("reaches the session: ONNX Runtime's enableCpuMemArena follows the setting", () => {
    assert.equal(sessionOptions({ intraOpNumThreads: 2, memoryArena: false }).enableCpuMemArena, false);
    assert.equal(sessionOptions({ intraOpNumThreads: 2, memoryArena: true }).enableCpuMemArena, true);
  });

  test('gives the same outputs, run after run and for a batch after a single run', async () => {
    for (const batch of [1, 2, 1]) {
      const feed = pattern(batch, batch + 3);
      const [a, b] = await Promise.all([
        arena.run('mobilenet', { input: { data: feed.slice(), dims: [batch, 3, 224, 224] } }),
        noArena.run('mobilenet', { input: { data: feed.slice(), dims: [batch, 3, 224, 224] } }),
      ]);
      assert.deepEqual(b.output!.dims, [batch, 1000]);
      assert.deepEqual(Array.from(b.output!.data), Array.from(a.output!.data), `batch ${batch}`);
    }
  });
});

describe('OnnxEngine with prefetch (CVSERVE_ONNX_PREFETCH)', () => {
  const engines: OnnxEngine[] = [];
  after(() => Promise.all(engines.map((e) => e.close())));

  /** One run more than the model has workers, started together: where the last one is before any reply can land. */
  async function lastRun(workers: number, prefetch: number): Promise<{ running: number; queued: number; feedBytes: number }> {
    const engine = new OnnxEngine({ workers, threads: 1, maxQueue: 1, modelsDir: MODELS_DIR, prefetch });
    engines.push(engine);
    await engine.load({ id: 'mobilenet', path: MOBILENET, warmup: mobilenetWarmup });
    const feeds = Array.from({ length: workers + 1 }, (_, i) => pattern(1, i + 1));
    const runs = feeds.map((data) => engine.run('mobilenet', { input: { data, dims: [1, 3, 224, 224] } }));
    // Microtasks only: the runs reach the pool, and no worker reply (a macrotask) can be handled yet.
    for (let i = 0; i < 20; i++) await Promise.resolve();
    const { running, queued } = engine.stats()[0]!;
    const feedBytes = feeds.at(-1)!.byteLength;
    await Promise.all(runs);
    return { running, queued, feedBytes };
  }

  test('a busy worker holds the next run, its feed moved to it (no copy); without prefetch it queues', async () => {
    assert.deepEqual(await lastRun(2, 1), { running: 3, queued: 0, feedBytes: 0 });
    assert.deepEqual(await lastRun(2, 0), { running: 2, queued: 1, feedBytes: pattern(1, 1).byteLength });
  });

  test('a model with one worker holds none: its runs use every thread', async () => {
    assert.deepEqual(await lastRun(1, 1), { running: 1, queued: 1, feedBytes: pattern(1, 1).byteLength });
  });
});
