import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createUpscaleResource } from '../../src/resources/upscale.js';
import { encodeModel } from '../engines/onnx-graph.js';
import { imageInput, onnxEngines, runContext, silentLog, tempModels, type TestEngines } from '../engines/onnx-fixtures.js';

/**
 * The `rgb-any-size` super-resolution family (RGB in 0..1, any input size, declared scale), on a
 * graph built here: four copies of the input concatenated on channels, then DepthToSpace(2). Each
 * output pixel is then the input pixel it lies in: an exact nearest-neighbour 2x, so every pixel of
 * the stitched result is known.
 */
function nearest2x(): Uint8Array {
  return encodeModel({
    nodes: [
      { op: 'Concat', inputs: ['input', 'input', 'input', 'input'], outputs: ['stacked'], attributes: [{ name: 'axis', int: 1 }] },
      { op: 'DepthToSpace', inputs: ['stacked'], outputs: ['output'], attributes: [{ name: 'blocksize', int: 2 }, { name: 'mode', string: 'DCR' }] },
    ],
    inputs: [{ name: 'input', type: 'float32', dims: ['batch', 3, 'height', 'width'] }],
    outputs: [{ name: 'output', type: 'float32', dims: ['batch', 3, 'height2', 'width2'] }],
    opset: 13,
  });
}

const entry = (id: string, tile: number, overlap: number, batch: number) => ({
  id,
  file: 'nearest2x.onnx',
  task: 'superres',
  input: { name: 'input', shape: ['batch', 3, 'height', 'width'], layout: 'NCHW', dtype: 'float32' },
  superres: { family: 'rgb-any-size', output: 'output', scale: 2, tile, overlap, batch },
});

/** A deterministic image where every pixel differs from its neighbours. */
function pattern(w: number, h: number): Buffer {
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    raw[i * 3] = (i * 37) & 255;
    raw[i * 3 + 1] = (i * 101 + 7) & 255;
    raw[i * 3 + 2] = (Math.floor(i / w) * 53 + (i % w) * 11) & 255;
  }
  return raw;
}

describe('/upscale with an rgb-any-size model from the manifest (self-built graph)', () => {
  let env: TestEngines;
  let cleanup: () => Promise<void>;

  before(async () => {
    const models = await tempModels([{ file: 'nearest2x.onnx', data: nearest2x(), kind: 'onnx' }], {
      models: [entry('tiled', 16, 4, 3), entry('whole', 256, 16, 8)] as never,
      routes: { upscale: 'tiled' },
    });
    cleanup = models.cleanup;
    env = onnxEngines({ dir: models.dir, manifest: models.manifest });
  });
  after(async () => {
    await env.close();
    await cleanup();
  });

  for (const [modelId, what] of [
    [undefined, 'in many small batched tiles (tile 16, overlap 4, batch 3)'],
    ['whole', 'in one tile when the image fits'],
  ] as const) {
    test(`37x23: exactly the nearest-neighbour 2x, ${what}`, async () => {
      const upscale = createUpscaleResource({ modelId });
      await upscale.init({ config: env.config, engines: env.engines, log: silentLog });
      assert.deepEqual(upscale.status(), { ready: true });
      const [w, h] = [37, 23];
      const src = pattern(w, h);
      const png = await sharp(src, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
      const result = await upscale.run(await imageInput(png), { format: undefined }, runContext());
      assert.ok(result.kind === 'image');
      const out = result.image;
      assert.deepEqual([out.width, out.height, out.channels], [74, 46, 3]);
      let wrong = 0;
      for (let y = 0; y < 46; y++) {
        for (let x = 0; x < 74; x++) {
          for (let c = 0; c < 3; c++) if (out.data[(y * 74 + x) * 3 + c] !== src[(Math.floor(y / 2) * w + Math.floor(x / 2)) * 3 + c]) wrong++;
        }
      }
      assert.equal(wrong, 0);
    });
  }
});
