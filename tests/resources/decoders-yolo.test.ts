import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { prepareImage, type InputTransform } from '../../src/image/preprocess.js';
import { allocateBatch, batchDims, packImage } from '../../src/image/pack.js';
import { customModels, findCustomModel, loadManifest, type DetectDecoder, type DetectModel, type Manifest } from '../../src/models/manifest.js';
import { keepRows } from '../../src/engines/onnx/rows.js';
import {
  candidateRows,
  decodeDetections,
  decodeSsd,
  decodeYolov5,
  decodeYolov8,
  decodeYolox,
  nmsPerClass,
  type Detection,
  type DetectOptions,
} from '../../src/resources/onnx/decoders.js';
import { OnnxModelBinding } from '../../src/resources/onnx/model-resource.js';
import { imageInput, onnxEngines, silentLog, type TestEngines } from '../engines/onnx-fixtures.js';
import {
  writeYoloModelsDir,
  YOLO_CANDIDATES,
  YOLO_EXPECTED,
  YOLO_LABELS,
  yoloTensor,
  yoloTestImage,
  type YoloExpected,
  type YoloLayout,
} from '../helpers/yolo-model.js';

const f = Math.fround;
/** The centred letterbox of 160x120 into 64x64: scale 0.4, 8 rows of padding on top. */
const LETTERBOX: InputTransform = { scaleX: 0.4, scaleY: 0.4, offsetX: 0, offsetY: 8, source: { width: 160, height: 120 } };
const SIZE = { width: 64, height: 64 };

const outputsOf = (layout: YoloLayout) => {
  const { dims, values } = yoloTensor(layout);
  return { output0: { dims, data: Float32Array.from(values) } };
};
const decoderOf = (family: YoloLayout, nmsIou = 0.45): DetectDecoder => ({ family, output: 'output0', activation: 'none', nmsIou });

/** Detections as comparable rows; boxes to 1e-9 (0.4 is not exact in binary). */
const rows = (found: Detection[]) => found.map((d) => ({ label: YOLO_LABELS[d.classId], box: d.box.map((v) => Math.round(v * 1e9) / 1e9), score: d.score }));
const want = (e: YoloExpected[]) => e.map((x) => ({ label: x.label, box: x.box, score: x.score }));

describe('YOLOv5 / YOLOv8 decoders on hand-built tensors', () => {
  for (const layout of ['yolov5', 'yolov8'] as const) {
    test(`${layout}: boxes back through the letterbox, clipped, per-class NMS, best first`, () => {
      const found = decodeDetections(outputsOf(layout), decoderOf(layout), SIZE, LETTERBOX, { threshold: 0.4 });
      assert.deepEqual(rows(found), want(YOLO_EXPECTED[layout]));
    });
  }

  test('yolov5: candidates before NMS; score = objectness × best class', () => {
    const found = decodeYolov5(outputsOf('yolov5'), { output: 'output0', activation: 'none' }, LETTERBOX, { threshold: 0.4 });
    // B survives until NMS; E (obj 0.35) and G (0.8 × 0.4 = 0.32) do not pass 0.4.
    assert.deepEqual(found.map((d) => [d.classId, d.score]), [
      [0, f(0.95) * f(0.95)],
      [0, f(0.9) * f(0.9)],
      [2, f(0.8) * f(0.875)],
      [1, f(0.75) * f(0.8)],
      [0, f(0.9) * f(0.5)],
    ]);
    const low = decodeYolov5(outputsOf('yolov5'), { output: 'output0', activation: 'none' }, LETTERBOX, { threshold: 0.25 });
    const [e, g] = [low[4]!, low[6]!];
    assert.deepEqual([e.score, g.score], [f(0.35) * f(0.95), f(0.8) * f(0.4)]);
    assert.deepEqual(rows([e, g]).map((r) => r.box), [[115, 20, 135, 40], [130, 100, 150, 110]]);
  });

  test('yolov8: transposed columns, score = best class, no objectness', () => {
    const found = decodeYolov8(outputsOf('yolov8'), { output: 'output0', activation: 'none' }, LETTERBOX, { threshold: 0.25 });
    assert.deepEqual(rows(found), [
      { label: 'person', box: [30, 25, 70, 85], score: f(0.9) },
      { label: 'person', box: [35, 30, 75, 90], score: f(0.8) },
      { label: 'dog', box: [35, 25, 75, 85], score: f(0.7) },
      { label: 'car', box: [95, 65, 145, 95], score: f(0.6) },
      { label: 'car', box: [115, 20, 135, 40], score: f(0.3) },
      { label: 'person', box: [0, 0, 25, 15], score: f(0.5) },
      { label: 'car', box: [130, 100, 150, 110], score: f(0.35) },
    ]);
  });

  for (const layout of ['yolov5', 'yolov8'] as const) {
    test(`${layout}: class filter picks by the best class, threshold, maxDetections`, () => {
      const run = (options: DetectOptions) => rows(decodeDetections(outputsOf(layout), decoderOf(layout), SIZE, LETTERBOX, options));
      const exp = want(YOLO_EXPECTED[layout]);
      // C's person score (0.3) does not make it a person: the best class decides, then the filter.
      assert.deepEqual(run({ threshold: 0.4, classes: new Set([0]) }), [exp[0], exp[3]]);
      assert.deepEqual(run({ threshold: 0.4, classes: new Set([2]) }), [exp[1]]);
      assert.deepEqual(run({ threshold: 0.4, classes: new Set([1, 2]) }), [exp[1], exp[2]]);
      assert.deepEqual(run({ threshold: 0.4, maxDetections: 2 }), exp.slice(0, 2));
      assert.deepEqual(run({ threshold: 0.95 }), []);
      const low = run({ threshold: 0.25 });
      assert.equal(low.length, 6, 'E and G join at 0.25; B stays suppressed');
      assert.deepEqual(low.slice(0, 4), exp);
    });
  }

  test('nmsIou decides what overlapping boxes of one class survive', () => {
    // A and B overlap with IoU 308 / 460 = 0.6696.
    const persons = (nmsIou: number) =>
      decodeDetections(outputsOf('yolov8'), decoderOf('yolov8', nmsIou), SIZE, LETTERBOX, { threshold: 0.4, classes: new Set([0]) }).map((d) => d.score);
    assert.deepEqual(persons(0.66), [f(0.9), f(0.5)]);
    assert.deepEqual(persons(0.67), [f(0.9), f(0.8), f(0.5)]);
  });

  test('activation sigmoid reads raw logits', () => {
    const logit = (p: number) => Math.log(p / (1 - p));
    // One yolov8 box, two classes; one yolov5 row.
    const v8 = { output0: { dims: [1, 6, 1], data: Float32Array.from([32, 32, 10, 10, logit(0.2), logit(0.75)]) } };
    const [d8] = decodeYolov8(v8, { output: 'output0', activation: 'sigmoid' }, LETTERBOX, { threshold: 0.5 });
    assert.equal(d8!.classId, 1);
    assert.ok(Math.abs(d8!.score - 0.75) < 1e-6);
    const v5 = { output0: { dims: [1, 1, 7], data: Float32Array.from([32, 32, 10, 10, logit(0.8), logit(0.9), logit(0.1)]) } };
    const [d5] = decodeYolov5(v5, { output: 'output0', activation: 'sigmoid' }, LETTERBOX, { threshold: 0.5 });
    assert.equal(d5!.classId, 0);
    assert.ok(Math.abs(d5!.score - 0.72) < 1e-6);
  });

  test('shape errors name the expected layout', () => {
    const bad = (dims: number[]) => ({ output0: { dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) } });
    const v5 = { output: 'output0', activation: 'none' } as const;
    assert.throws(() => decodeYolov5(bad([1, 8, 4]), v5, LETTERBOX, { threshold: 0.4 }), /rows hold 4 values; YOLOv5 rows are cx, cy, w, h, obj and at least one class/);
    assert.throws(() => decodeYolov5(bad([2, 3, 8]), v5, LETTERBOX, { threshold: 0.4 }), /dims \[2, 3, 8\]; a YOLOv5 detector answers \[1, boxes, 5 \+ classes\]/);
    assert.throws(() => decodeYolov8(bad([1, 4, 10]), v5, LETTERBOX, { threshold: 0.4 }), /has 4 rows; YOLOv8 outputs are cx, cy, w, h and at least one class row/);
    assert.throws(() => decodeYolov8(bad([1, 84]), v5, LETTERBOX, { threshold: 0.4 }), /a YOLOv8\/YOLO11 detector answers \[1, 4 \+ classes, boxes\]/);
    assert.throws(() => decodeYolov8(bad([1, 7, 7]), { output: 'output', activation: 'none' }, LETTERBOX, { threshold: 0.4 }), /no output named output \(it has output0\)/);
  });

  test('decodeDetections gives for yolox and ssd exactly what the family functions and NMS gave', () => {
    // The YOLOX rows of the catdetection test, the second one now the first box again (from the
    // next grid cell, tx −0.5), lower: NMS removes it.
    const yoloxRows = [
      [0.5, 0.5, Math.log(0.5), Math.log(0.25), 0.9, 0.1, 0.8],
      [-0.5, 0.5, Math.log(0.5), Math.log(0.25), 0.85, 0.1, 0.8],
      [0, 0, 0, 0, 0.5, 0.5, 0.2],
      [0.25, 0.75, 0, 0, 0.8, 0.6, 0.1],
    ];
    const yolox = { output: { data: Float32Array.from(yoloxRows.flat()), dims: [1, 4, 7] } };
    const t = { scaleX: 0.5, scaleY: 0.5, offsetX: 0, offsetY: 0, source: { width: 128, height: 100 } };
    const yoloxSpec: DetectDecoder & { family: 'yolox' } = { family: 'yolox', output: 'output', strides: [32], activation: 'none', nmsIou: 0.45 };
    const opts = { threshold: 0.3 };
    const viaOne = decodeDetections(yolox, yoloxSpec, SIZE, t, opts);
    assert.deepEqual(viaOne, nmsPerClass(decodeYolox(yolox, yoloxSpec, SIZE, t, opts), 0.45));
    assert.equal(decodeYolox(yolox, yoloxSpec, SIZE, t, opts).length, 3);
    assert.deepEqual(viaOne.map((d) => d.box.map((v) => +v.toFixed(3))), [[16, 24, 48, 40], [48, 80, 112, 100]]);

    const ssd = {
      boxes: { data: Float32Array.from([0.1, 0.2, 0.5, 0.6, 0.12, 0.22, 0.5, 0.6, 0.5, 0.5, 0.9, 0.9]), dims: [1, 3, 4] },
      scores: { data: Float32Array.from([0.6, 0.9, 0.5]), dims: [1, 3] },
      classes: { data: Float32Array.from([2, 2, 3]), dims: [1, 3] },
    };
    const ssdSpec = (nmsIou: number | null) =>
      ({ family: 'ssd', outputs: { boxes: 'boxes', scores: 'scores', classes: 'classes' }, boxFormat: 'yxyx', normalized: true, classOffset: -1, nmsIou }) as const;
    const st = { scaleX: 1.5, scaleY: 3, offsetX: 0, offsetY: 0, source: { width: 200, height: 100 } };
    assert.deepEqual(decodeDetections(ssd, ssdSpec(0.45), { width: 300, height: 300 }, st, opts), nmsPerClass(decodeSsd(ssd, ssdSpec(0.45), { width: 300, height: 300 }, st, opts), 0.45));
    const trusted = decodeDetections(ssd, ssdSpec(null), { width: 300, height: 300 }, st, opts);
    assert.deepEqual(trusted, decodeSsd(ssd, ssdSpec(null), { width: 300, height: 300 }, st, opts).sort((a, b) => b.score - a.score));
    assert.deepEqual(trusted.map((d) => d.score), [f(0.9), f(0.6), f(0.5)], 'nmsIou null: sorted, nothing suppressed');
    assert.deepEqual(decodeDetections(ssd, ssdSpec(null), { width: 300, height: 300 }, st, { ...opts, maxDetections: 1 }).map((d) => d.score), [f(0.9)]);
  });

  test('the candidates table is what the hand computation assumed (A/B IoU 0.67, C a dog)', () => {
    assert.equal(YOLO_CANDIDATES.length, 7);
    const box = (i: number) => {
      const [cx, cy, w, h] = YOLO_CANDIDATES[i]!.box;
      return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
    };
    assert.deepEqual([box(0), box(1)], [[12, 18, 28, 42], [14, 20, 30, 44]]);
  });
});

describe('generated YOLO detectors through the manifest, the model store and onnxruntime-node', () => {
  let tmp: string;
  let manifest: Manifest;
  let env: TestEngines;
  const bindings = new Map<string, OnnxModelBinding<DetectModel>>();

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'cvserve-yolo-'));
    const written = await writeYoloModelsDir(tmp, [{ layout: 'yolov8' }, { layout: 'yolov5', id: 'my-v5' }]);
    manifest = loadManifest(written.manifestFile);
    env = onnxEngines({ dir: tmp, manifest });
    for (const name of ['test-yolov8', 'my-v5']) {
      const binding = new OnnxModelBinding<DetectModel>(`custom/${name}`, 'detect', name);
      await binding.init({ config: env.config, engines: env.engines, log: silentLog });
      assert.deepEqual(binding.status(), { ready: true }, name);
      bindings.set(name, binding);
    }
  });
  after(async () => {
    for (const b of bindings.values()) b.close();
    await env.close();
    await rm(tmp, { recursive: true, force: true });
  });

  test('the written manifest lists every detector as a custom model by its id', () => {
    assert.deepEqual(customModels(manifest).map((m) => m.id), ['yolox-nano', 'test-yolov8', 'my-v5']);
    const v8 = findCustomModel(manifest, 'Test-YOLOv8')!;
    assert.equal(v8.labels, 'test-yolov8.txt');
    assert.deepEqual(v8.decoder, { family: 'yolov8', output: 'output0', activation: 'none', nmsIou: 0.45 });
    assert.equal(findCustomModel(manifest, 'mobilenetv2-12-int8'), undefined, 'a classifier is not a custom model');
    assert.equal(findCustomModel(manifest, 'list'), undefined);
  });

  /** What a detector route does: prepare, pack, run on the engine, decode. */
  const detect = async (name: string, options: DetectOptions) => {
    const { model, engine, labels } = bindings.get(name)!.require();
    assert.deepEqual(labels, [...YOLO_LABELS]);
    const size = bindings.get(name)!.inputSize();
    const prepared = await prepareImage(await imageInput(await yoloTestImage()), model.preprocess.resize, size);
    const pixels = size.width * size.height;
    const data = packImage(prepared.rgb, pixels, { ...model.preprocess, layout: model.input.layout, dtype: model.input.dtype }, allocateBatch(model.input.dtype, 1, pixels));
    const outputs = await engine.run(model.id, { [model.input.name]: { data, dims: batchDims(model.input.layout, 1, size) } });
    return { prepared, found: decodeDetections(outputs, model.decoder, size, prepared.transform, options) };
  };

  test('the centred letterbox of the 160x120 photo: scale 0.4, 8 rows of 114 above and below', async () => {
    const { prepared } = await detect('test-yolov8', { threshold: 0.4 });
    assert.deepEqual(prepared.transform, LETTERBOX);
    const px = (x: number, y: number) => Array.from(prepared.rgb.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
    assert.deepEqual([px(0, 7), px(63, 56), px(0, 8), px(63, 55)], [[114, 114, 114], [114, 114, 114], [128, 128, 128], [128, 128, 128]]);
  });

  for (const [name, layout] of [['test-yolov8', 'yolov8'], ['my-v5', 'yolov5']] as const) {
    test(`${name} (${layout}): the hand-computed detections`, async () => {
      assert.deepEqual(rows((await detect(name, { threshold: 0.4 })).found), want(YOLO_EXPECTED[layout]));
      assert.deepEqual(rows((await detect(name, { threshold: 0.4, classes: new Set([1]) })).found), [want(YOLO_EXPECTED[layout])[2]]);
    });
  }
});

describe('YOLOX candidate rows (the worker keeps only anchors that can be detections)', () => {
  /** A 416 grid's worth of rows: random boxes and scores, some objectness exactly at the thresholds. */
  function yoloxOutput(activation: 'none' | 'sigmoid', thresholds: number[]): { output: { dims: number[]; data: Float32Array } } {
    const rows = 52 * 52 + 26 * 26 + 13 * 13;
    const data = new Float32Array(rows * 85);
    let x = 7;
    const rand = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
    for (let r = 0; r < rows; r++) {
      const o = r * 85;
      data.set([rand() - 0.5, rand() - 0.5, rand() * 2 - 1, rand() * 2 - 1], o);
      for (let c = 4; c < 85; c++) data[o + c] = activation === 'none' ? rand() ** 3 : (rand() - 0.7) * 12;
      const t = thresholds[r % thresholds.length]!;
      if (r % 97 === 0) data[o + 4] = activation === 'none' ? t : Math.log(t / (1 - t));
    }
    return { output: { dims: [1, rows, 85], data } };
  }
  const size = { width: 416, height: 416 };
  const transform: InputTransform = { scaleX: 1.3, scaleY: 1.3, offsetX: 0, offsetY: 52, source: { width: 320, height: 240 } };
  const thresholds = [0.05, 0.3, 0.4, 0.61];

  for (const activation of ['none', 'sigmoid'] as const) {
    test(`${activation}: the detections from the kept rows are the detections from every row`, () => {
      const full = yoloxOutput(activation, thresholds);
      const decoder: DetectDecoder = { family: 'yolox', output: 'output', strides: [8, 16, 32], activation, nmsIou: 0.45 };
      for (const threshold of thresholds) {
        for (const classes of [undefined, new Set([0, 2, 15])]) {
          const filter = candidateRows(decoder, threshold)!;
          const kept = keepRows(full.output, filter);
          assert.ok(kept.dims[1]! < full.output.dims[1]!, `${threshold}: rows dropped (${kept.dims[1]} kept)`);
          const options = { threshold, classes };
          const expected = decodeDetections(full, decoder, size, transform, options);
          assert.ok(expected.length > 0, 'some detections');
          assert.deepEqual(decodeDetections({ output: kept }, decoder, size, transform, options), expected, `threshold ${threshold}`);
        }
      }
    });
  }

  test('no filter for a threshold of 0 or another family', () => {
    const yolox: DetectDecoder = { family: 'yolox', output: 'output', strides: [8, 16, 32], activation: 'none', nmsIou: 0.45 };
    assert.equal(candidateRows(yolox, 0), undefined);
    assert.equal(candidateRows({ family: 'yolov8', output: 'output0', activation: 'none', nmsIou: 0.45 } as DetectDecoder, 0.5), undefined);
  });
});
