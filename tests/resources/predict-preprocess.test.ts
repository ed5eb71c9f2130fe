import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { prepareImage, resizeTarget, toOriginal } from '../../src/image/preprocess.js';
import { packImage } from '../../src/image/pack.js';
import { topK } from '../../src/resources/onnx/decoders.js';
import { imageInput } from '../engines/onnx-fixtures.js';
import { image } from '../helpers/paths.js';

/** A PNG whose left half is one colour and right half another, `w`×`h`. */
async function halves(w: number, h: number, left: [number, number, number], right: [number, number, number]): Promise<Buffer> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < w / 2 ? left : right, (y * w + x) * 3);
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

describe('model input preprocessing', () => {
  test('shorter side 256 then a centre crop of 224, as MANIFEST.md describes (car.jpg 2372x1334)', async () => {
    const input = await imageInput(image('car.jpg'));
    const p = await prepareImage(input, { mode: 'shorter-side-center-crop', shorterSide: 256, kernel: 'lanczos3' }, { width: 224, height: 224 });
    assert.equal(p.rgb.length, 224 * 224 * 3);
    // sharp's fit 'outside' gives 456x256 (2372 × 256/1334 = 455.2, rounded up); the crop starts at floor((456-224)/2) = 116.
    assert.equal(p.transform.offsetX, -116);
    assert.ok(Math.abs(p.transform.scaleX - 456 / 2372) < 1e-12);
    assert.equal(p.transform.offsetY, -16);
    assert.ok(Math.abs(p.transform.scaleY - 256 / 1334) < 1e-12);
    const expected = await input.pipeline().resize(256, 256, { fit: 'outside' }).extract({ left: 116, top: 16, width: 224, height: 224 }).removeAlpha().raw().toBuffer();
    assert.deepEqual(Buffer.from(p.rgb), expected);
  });

  test('resizeTarget is the size sharp\'s outside fit gives decoded pixels (the crop is taken from it)', async () => {
    const spec = { mode: 'shorter-side-center-crop', shorterSide: 256, kernel: 'lanczos3' } as const;
    const sides = [3, 97, 224, 255, 256, 257, 333, 482, 511, 640, 1001, 1334];
    for (const width of sides) {
      for (const height of sides.filter((h) => h * width <= 1334 * 482 && Math.max(h, width) / Math.min(h, width) < 20)) {
        const { info } = await sharp(Buffer.alloc(width * height * 3), { raw: { width, height, channels: 3 } })
          .resize(256, 256, { fit: 'outside', kernel: 'lanczos3' })
          .raw()
          .toBuffer({ resolveWithObject: true });
        const target = resizeTarget(spec, { width, height }, { width: 224, height: 224 });
        assert.deepEqual([target.width, target.height], [info.width, info.height], `${width}x${height}`);
      }
    }
  });

  test('letterbox top-left with fill 114, boxes map back through one ratio', async () => {
    const input = await imageInput(await halves(200, 100, [255, 0, 0], [0, 0, 255]));
    const p = await prepareImage(input, { mode: 'letterbox', align: 'top-left', fill: 114, kernel: 'nearest' }, { width: 64, height: 64 });
    const px = (x: number, y: number) => Array.from(p.rgb.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
    assert.deepEqual(px(0, 0), [255, 0, 0]);
    assert.deepEqual(px(63, 31), [0, 0, 255]);
    assert.deepEqual(px(0, 32), [114, 114, 114], 'below the image: fill');
    assert.deepEqual(px(63, 63), [114, 114, 114]);
    assert.deepEqual(toOriginal(p.transform, 32, 16), [100, 50]);
  });

  test('letterbox centred pads both sides', async () => {
    const input = await imageInput(await halves(100, 200, [0, 255, 0], [0, 255, 0]));
    const p = await prepareImage(input, { mode: 'letterbox', align: 'center', fill: 0, kernel: 'nearest' }, { width: 64, height: 64 });
    assert.equal(p.transform.offsetX, 16);
    assert.deepEqual(Array.from(p.rgb.subarray(0, 3)), [0, 0, 0]);
    assert.deepEqual(Array.from(p.rgb.subarray((10 * 64 + 32) * 3, (10 * 64 + 32) * 3 + 3)), [0, 255, 0]);
    assert.deepEqual(toOriginal(p.transform, 16, 0), [0, 0]);
  });

  test('packing: scale, mean/std per channel, RGB or BGR, NCHW or NHWC, float32 or uint8', () => {
    // Two pixels: (10, 20, 30) and (200, 100, 0).
    const rgb = Uint8Array.from([10, 20, 30, 200, 100, 0]);
    const norm = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
    const nchw = packImage(rgb, 2, { ...norm, channels: 'RGB', layout: 'NCHW', dtype: 'float32' }, new Float32Array(6));
    const f = (v: number, c: number) => Math.fround((v / 255 - norm.mean[c]!) / norm.std[c]!);
    assert.deepEqual(Array.from(nchw).map((v) => +v.toFixed(5)), [f(10, 0), f(200, 0), f(20, 1), f(100, 1), f(30, 2), f(0, 2)].map((v) => +v.toFixed(5)));
    const bgr = packImage(rgb, 2, { channels: 'BGR', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], layout: 'NCHW', dtype: 'float32' }, new Float32Array(6));
    assert.deepEqual(Array.from(bgr), [30, 0, 20, 100, 10, 200]);
    const nhwc = packImage(rgb, 2, { channels: 'BGR', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], layout: 'NHWC', dtype: 'uint8' }, new Uint8Array(6));
    assert.deepEqual(Array.from(nhwc), [30, 20, 10, 0, 100, 200]);
    // Second image of a batch of two goes after the first.
    const batch = packImage(rgb, 2, { channels: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], layout: 'NCHW', dtype: 'float32' }, new Float32Array(12), 1);
    assert.deepEqual(Array.from(batch.subarray(6)), [10, 200, 20, 100, 30, 0]);
    assert.deepEqual(Array.from(batch.subarray(0, 6)), [0, 0, 0, 0, 0, 0]);
  });

  test('softmax top-k', () => {
    const logits = Float32Array.from([1, 3, 2, 3, -1]);
    const top = topK(logits, 3, 'softmax');
    const e = [1, 3, 2, 3, -1].map((v) => Math.exp(v - 3));
    const sum = e.reduce((a, b) => a + b);
    assert.deepEqual(top.map((t) => t.index), [1, 3, 2], 'ties keep index order');
    assert.ok(Math.abs(top[0]!.probability - e[1]! / sum) < 1e-6);
    assert.deepEqual(topK(Float32Array.from([0.1, 0.7, 0.2]), 2, 'none').map((t) => [t.index, +t.probability.toFixed(3)]), [[1, 0.7], [2, 0.2]]);
  });
});
