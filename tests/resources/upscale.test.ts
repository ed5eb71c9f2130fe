import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { AppError } from '../../src/errors.js';
import type { RawImage } from '../../src/image/types.js';
import { checkCost } from '../../src/resources/cost.js';
import { layoutAxis, planTiles } from '../../src/resources/onnx/superres.js';
import { createUpscaleResource, type UpscaleResource } from '../../src/resources/upscale.js';
import { imageInput, onnxEngines, runContext, silentLog, type TestEngines } from '../engines/onnx-fixtures.js';
import { image } from '../helpers/paths.js';

/** Luma PSNR (BT.601 full range) between two RGB images, ignoring a border. */
function lumaPsnr(a: Uint8Array, b: Uint8Array, width: number, height: number, border: number): number {
  let se = 0;
  let n = 0;
  for (let y = border; y < height - border; y++) {
    for (let x = border; x < width - border; x++) {
      const i = (y * width + x) * 3;
      const ya = 0.299 * a[i]! + 0.587 * a[i + 1]! + 0.114 * a[i + 2]!;
      const yb = 0.299 * b[i]! + 0.587 * b[i + 1]! + 0.114 * b[i + 2]!;
      se += (ya - yb) ** 2;
      n++;
    }
  }
  return 10 * Math.log10((255 * 255) / (se / n));
}

describe('/upscale (ESPCN x3, luma) at resource level', () => {
  let env: TestEngines;
  let upscale: UpscaleResource;

  before(async () => {
    env = onnxEngines({ config: { maxOutputPixels: 5_000_000 } });
    upscale = createUpscaleResource();
    await upscale.init({ config: env.config, engines: env.engines, log: silentLog });
    assert.deepEqual(upscale.status(), { ready: true });
  });
  after(() => env.close());

  const run = async (bytes: Buffer | string): Promise<RawImage> => {
    const result = await upscale.run(await imageInput(bytes), { format: undefined }, runContext());
    assert.ok(result.kind === 'image');
    assert.equal(result.format, 'input', 'answered in the input format unless format says otherwise');
    return result.image;
  };

  test('exactly 3x width and height, on a size that is not a multiple of the tile (640x482)', async () => {
    const out = await run(image('test_face_processing.jpg'));
    assert.deepEqual([out.width, out.height, out.channels, out.data.length], [1920, 1446, 3, 1920 * 1446 * 3]);
  });

  test('CVSERVE_UPSCALE_BATCH=1: one tile per model run, the same pixels as the manifest\'s batches of 8', async () => {
    const capped = createUpscaleResource();
    await capped.init({ config: { ...env.config, upscaleBatch: 1 }, engines: env.engines, log: silentLog });
    const runs = () => env.engines.onnx.stats().find((s) => s.name === 'onnx:espcn-x3')!.completed;
    const tiles = planTiles(640, 482, { family: 'y-channel-fixed-tile', output: 'output', scale: 3, tile: 224, overlap: 16, batch: 8 }).tiles.length;
    const r0 = runs();
    const batched = await run(image('test_face_processing.jpg'));
    const r1 = runs();
    const one = await capped.run(await imageInput(image('test_face_processing.jpg')), { format: undefined }, runContext());
    const r2 = runs();
    await capped.close();
    assert.ok(one.kind === 'image');
    assert.equal(tiles, 12);
    assert.deepEqual([r1 - r0, r2 - r1], [2, 12], 'model runs: 12 tiles as 8 + 4, then one by one');
    assert.ok(Buffer.from(one.image.data).equals(Buffer.from(batched.data)), 'same pixels');
  });

  test('car.jpg 672x672 crop at (760,260), downscaled 3x with sharp cubic: beats a cubic upscale by ≥ 2 dB luma PSNR', async (t) => {
    const hr = await sharp(image('car.jpg')).extract({ left: 760, top: 260, width: 672, height: 672 }).removeAlpha().raw().toBuffer();
    const raw = { raw: { width: 672, height: 672, channels: 3 as const } };
    const lr = await sharp(hr, raw).resize(224, 224, { kernel: 'cubic' }).raw().toBuffer();
    const lrPng = await sharp(lr, { raw: { width: 224, height: 224, channels: 3 } }).png().toBuffer();
    const cubic = await sharp(lr, { raw: { width: 224, height: 224, channels: 3 } }).resize(672, 672, { kernel: 'cubic' }).raw().toBuffer();
    const model = await run(lrPng);
    assert.deepEqual([model.width, model.height], [672, 672]);
    const psnrCubic = lumaPsnr(cubic, hr, 672, 672, 6);
    const psnrModel = lumaPsnr(model.data, hr, 672, 672, 6);
    t.diagnostic(`luma PSNR: cubic ${psnrCubic.toFixed(2)} dB, model ${psnrModel.toFixed(2)} dB`);
    // MANIFEST.md: 30.19 dB (cubic) vs 33.34 dB (model).
    assert.ok(Math.abs(psnrCubic - 30.19) < 0.1, `cubic ${psnrCubic.toFixed(2)} dB`);
    assert.ok(psnrModel - psnrCubic >= 2, `model ${psnrModel.toFixed(2)} dB vs cubic ${psnrCubic.toFixed(2)} dB`);
  });

  test('a flat-colour image comes out flat: no tile seams', async () => {
    for (const [r, g, b] of [[90, 140, 200], [128, 128, 128], [0, 0, 0]] as const) {
      // 500x300 gives 3x2 tiles of 224 with overlaps.
      const png = await sharp({ create: { width: 500, height: 300, channels: 3, background: { r, g, b } } }).png().toBuffer();
      const out = await run(png);
      const min = [255, 255, 255];
      const max = [0, 0, 0];
      for (let i = 0; i < out.data.length; i++) {
        const c = i % 3;
        min[c] = Math.min(min[c]!, out.data[i]!);
        max[c] = Math.max(max[c]!, out.data[i]!);
      }
      for (let c = 0; c < 3; c++) assert.ok(max[c]! - min[c]! <= 1, `rgb(${r},${g},${b}) channel ${c}: ${min[c]}..${max[c]}`);
    }
  });

  test('output larger than the pixel limit is refused with 413 from the header, before any work', async () => {
    // 1000x1334 × 9 = 12 006 000 > 5 000 000.
    const items = upscale.cost({ width: 1000, height: 1334, format: 'jpeg' });
    assert.throws(() => checkCost('upscale', items, { maxOutputPixels: 5_000_000, maxWorkPixels: 40_000_000, detectMaxPyramidPixels: 1e8, upscaleMaxTiles: 160, ocrMaxSide: 1600, ocrMaxBoxes: 50 }), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.status, 413);
      assert.equal(err.code, 'OUTPUT_TOO_LARGE');
      assert.equal(err.publicMessage, '/upscale: upscaling 1000x1334 by 3 to 3000x4002 needs 12,006,000 pixels, 2.40x the limit of 5,000,000 (CVSERVE_MAX_OUTPUT_PIXELS)');
      return true;
    });
  });

  test('cost: the tiles and the padded canvas, as planTiles makes them', () => {
    for (const [w, h] of [[1000, 1334], [1, 100_000], [224, 224], [209, 900], [4000, 1000]] as const) {
      const items = upscale.cost({ width: w, height: h, format: 'png' });
      const tiles = items.find((i) => i.limit === 'upscaleMaxTiles')!.amount;
      const plan = planTiles(w, h, { family: 'y-channel-fixed-tile', output: 'output', scale: 3, tile: 224, overlap: 16, batch: 8 });
      assert.equal(tiles, plan.tiles.length, `${w}x${h}`);
      assert.equal(items.find((i) => i.limit === 'maxWorkPixels')!.amount, plan.canvasW * plan.canvasH, `${w}x${h} canvas`);
    }
  });

  test('tile layout: overlapping tiles, overlaps cut in the middle, spans cover the axis once', () => {
    assert.deepEqual(layoutAxis(200, 224, 16), { starts: [0], keep: [[0, 200]] });
    const l = layoutAxis(516, 224, 16);
    assert.deepEqual(l.starts, [0, 208, 292]);
    assert.deepEqual(l.keep, [[0, 216], [216, 362], [362, 516]]);
    for (let i = 1; i < l.keep.length; i++) {
      assert.equal(l.keep[i]![0], l.keep[i - 1]![1]);
      // Kept pixels stay ≥ overlap/2 away from the tile's own inner edges.
      assert.ok(l.keep[i]![0] - l.starts[i]! >= 8);
      assert.ok(l.starts[i - 1]! + 224 - l.keep[i - 1]![1] >= 8);
    }
  });
});
