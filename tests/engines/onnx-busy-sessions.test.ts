import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { frigateFrame } from '../../scripts/deepstack-clients.js';
import { OnnxEngine, type Feeds } from '../../src/engines/onnx/engine.js';
import { QUIET_STARTS, RunningCells } from '../../src/engines/onnx/running-cells.js';
import { prepareImage } from '../../src/image/preprocess.js';
import { packSpaceToDepth } from '../../src/image/pack.js';
import { loadManifest, type DetectModel } from '../../src/models/manifest.js';
import { createPredictResource } from '../../src/resources/predict.js';
import { createUpscaleResource } from '../../src/resources/upscale.js';
import { imageInput, MODELS_DIR, onnxEngines, silentLog } from './onnx-fixtures.js';
import { image } from '../helpers/paths.js';

const yolox = () => loadManifest().models.find((m) => m.id === 'yolox-nano') as DetectModel;
const FEED_DIMS = [1, 12, 208, 208];

/** YOLOX-nano as the service loads it (fed past its Focus layer), on an engine of the given sizing. */
async function yoloxEngine(options: { workers: number; threads: number; busyThreads?: number }, packs?: boolean): Promise<OnnxEngine> {
  const model = yolox();
  const engine = new OnnxEngine({ ...options, maxQueue: 8, modelsDir: MODELS_DIR });
  const input = { dims: FEED_DIMS, dtype: 'float32' as const };
  const tensor = model.input.spaceToDepth!.tensor;
  const packing = { spec: { ...model.preprocess, layout: model.input.layout, dtype: model.input.dtype }, blocks: model.input.spaceToDepth!.blocks };
  await engine.load({ id: 'yolox', path: path.join(MODELS_DIR, model.file), warmup: { [tensor]: input }, feedFrom: { tensor, dims: FEED_DIMS }, packs: packs ? { [tensor]: packing } : undefined });
  return engine;
}

/** Frigate's 320 frame of a photo, enlarged and packed as the service packs it (or left as RGB for the worker to pack). */
async function frameFeed(photo: string, rgbFeed = false): Promise<Feeds> {
  const model = yolox();
  const { rgb } = await prepareImage(await imageInput(await frigateFrame(readFileSync(photo), 320)), model.preprocess.resize, { width: 416, height: 416 });
  if (rgbFeed) return { [model.input.spaceToDepth!.tensor]: { data: Uint8Array.from(rgb), dims: FEED_DIMS } };
  const spec = { ...model.preprocess, layout: model.input.layout, dtype: model.input.dtype };
  const data = packSpaceToDepth(rgb, 416, 416, spec, model.input.spaceToDepth!.blocks, new Float32Array(416 * 416 * 3));
  return { [model.input.spaceToDepth!.tensor]: { data, dims: FEED_DIMS } };
}

const copy = (feeds: Feeds): Feeds => Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { data: t.data.slice(), dims: t.dims }]));
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('RunningCells', () => {
  test('a worker shares the cores while another runs, and for the next two starts after', () => {
    const buffer = RunningCells.buffer(3);
    const [a, b] = [new RunningCells(buffer, 0), new RunningCells(buffer, 1)];
    assert.equal(a.enter(), false, 'alone');
    assert.equal(b.enter(), true, 'a runs');
    a.exit();
    b.exit();
    const starts: boolean[] = [];
    for (const cells of [b, a, b, a]) {
      starts.push(cells.enter());
      cells.exit();
    }
    assert.equal(QUIET_STARTS, 2);
    assert.deepEqual(starts, [true, true, false, false], 'two quiet starts, then alone');
    assert.equal(a.enter(), false);
    assert.equal(b.enter(), true, 'a runs again');
    b.exit();
    a.exit();
    assert.equal(a.enter(), true, 'the count starts over');
    a.exit();
  });

  test('a quiet start only counts when nothing else runs; the slot view leaves the count out', () => {
    const buffer = RunningCells.buffer(2);
    const slots = RunningCells.slots(buffer);
    assert.equal(slots.length, 2);
    const [a, b] = [new RunningCells(buffer, 0), new RunningCells(buffer, 1)];
    slots[1] = 1; // as a test marks a worker busy
    assert.equal(a.enter(), true);
    a.exit();
    slots[1] = 0;
    assert.equal(b.enter(), true);
    b.exit();
    assert.equal(b.enter(), true);
    b.exit();
    assert.equal(b.enter(), false);
    b.exit();
  });

  test("a worker replacing one that died mid-run clears that slot's cell", () => {
    const buffer = RunningCells.buffer(2);
    new Int32Array(buffer)[1] = 1;
    new RunningCells(buffer, 1);
    assert.equal(new RunningCells(buffer, 0).enter(), false);
    assert.throws(() => new RunningCells(buffer, 2), /slot 2/);
  });
});

describe('ONNX workers with a busy session (CVSERVE_ONNX_BUSY_THREADS)', () => {
  let adaptive: OnnxEngine;
  let oneThread: OnnxEngine;

  before(async () => {
    [adaptive, oneThread] = await Promise.all([yoloxEngine({ workers: 2, threads: 2, busyThreads: 1 }), yoloxEngine({ workers: 1, threads: 1 })]);
  });

  after(async () => {
    await Promise.all([adaptive?.close(), oneThread?.close()]);
  });

  test('a lone run gets every thread; one that starts while another worker runs gets the busy session', async () => {
    const feeds = await frameFeed(image('car.jpg'));
    const lone = await adaptive.runTimed('yolox', copy(feeds));
    assert.equal(lone.threads, 2);
    const cells = adaptive.runningCellsOf('yolox')!;
    assert.equal(cells.length, 2);
    // Both cells marked: whichever worker takes the run sees the other one running.
    cells.fill(1);
    try {
      const busy = await adaptive.runTimed('yolox', copy(feeds));
      assert.equal(busy.threads, 1);
      assert.ok(bytes(busy.outputs.output!.data).equals(bytes(lone.outputs.output!.data)), 'same outputs');
    } finally {
      cells.fill(0);
    }
    // The next two starts find it quiet but still share the cores (under load the other worker is between frames).
    const threads = [];
    for (let i = 0; i < 3; i++) threads.push((await adaptive.runTimed('yolox', copy(feeds))).threads);
    assert.deepEqual(threads, [1, 1, 2], 'alone again after two quiet starts');
    assert.deepEqual(adaptive.stats()[0]!.runs, { 'all-threads': 2, 'busy-threads': 3 });
  });

  test('one thread and two give bit-identical outputs on the reference frames (detections do not depend on the session)', async () => {
    const photos = [image('car.jpg'), image('cat_small.jpg'), image('test_face_processing.jpg')];
    for (const photo of photos) {
      const feeds = await frameFeed(photo);
      const [a, b] = await Promise.all([adaptive.run('yolox', copy(feeds)), oneThread.run('yolox', copy(feeds))]);
      assert.ok(bytes(a.output!.data).equals(bytes(b.output!.data)), path.basename(photo));
    }
  });

  test('one worker has no running cells; threads already at the busy count stay at it beside a busy worker', async () => {
    assert.equal(oneThread.runningCellsOf('yolox'), undefined);
    const same = await yoloxEngine({ workers: 2, threads: 1, busyThreads: 1 });
    try {
      const cells = same.runningCellsOf('yolox')!;
      cells.fill(1);
      const r = await same.runTimed('yolox', await frameFeed(image('car.jpg')));
      cells.fill(0);
      assert.equal(r.threads, 1);
      assert.equal(same.workersOf('yolox'), 2);
    } finally {
      await same.close();
    }
  });
});

test('a worker given 8-bit RGB for a float input it packs gives the outputs of the float feed; one not told to pack refuses it', async () => {
  const packing = await yoloxEngine({ workers: 1, threads: 1 }, true);
  const plain = await yoloxEngine({ workers: 1, threads: 1 });
  try {
    for (const photo of [image('car.jpg'), image('cat_small.jpg')]) {
      const fromFloats = await packing.run('yolox', await frameFeed(photo));
      const fromRgb = await packing.run('yolox', await frameFeed(photo, true));
      for (const name of Object.keys(fromFloats)) assert.ok(bytes(fromRgb[name]!.data).equals(bytes(fromFloats[name]!.data)), `${path.basename(photo)} ${name}: same outputs`);
    }
    await assert.rejects(plain.run('yolox', await frameFeed(image('car.jpg'), true)), 'uint8 data for a float input');
  } finally {
    await Promise.all([packing.close(), plain.close()]);
  }
});

test('a run that keeps only candidate rows answers exactly those rows of the full output, with their indices', async () => {
  const engine = await yoloxEngine({ workers: 1, threads: 1 });
  try {
    const feeds = await frameFeed(image('car.jpg'));
    const full = (await engine.run('yolox', copy(feeds))).output!;
    const kept = (await engine.run('yolox', feeds, { keepRows: { output: 'output', column: 4, min: 0.3 } })).output!;
    const width = full.dims[2]!;
    const expected = [...Array(full.dims[1]).keys()].filter((r) => full.data[r * width + 4]! >= 0.3);
    assert.ok(expected.length > 0 && expected.length < 100, `${expected.length} candidates`);
    assert.deepEqual([...kept.rows!], expected);
    assert.deepEqual(kept.dims, [1, expected.length, width]);
    expected.forEach((r, i) => assert.ok(bytes(kept.data.subarray(i * width, (i + 1) * width)).equals(bytes(full.data.subarray(r * width, (r + 1) * width))), `row ${r}`));
  } finally {
    await engine.close();
  }
});

test("a manifest entry's workers overrides the engine's: the shipped upscaler keeps one, the classifier gets the engine's two", async () => {
  const env = onnxEngines({ config: { onnxWorkers: 2 } });
  try {
    const [upscale, predict] = [createUpscaleResource(), createPredictResource()];
    await Promise.all([upscale.init({ config: env.config, engines: env.engines, log: silentLog }), predict.init({ config: env.config, engines: env.engines, log: silentLog })]);
    assert.equal(env.engines.onnx.workersOf('espcn-x3'), 1);
    assert.equal(env.engines.onnx.workersOf('mobilenetv2-12-int8'), 2);
  } finally {
    await env.close();
  }
});
