import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { testConfig } from '../../src/config.js';
import { OpenCvEngine, type Box } from '../../src/engines/opencv/engine.js';
import { AppError } from '../../src/errors.js';
import { ModelStore } from '../../src/models/store.js';
import { openImage } from '../../src/image/decode.js';
import { createHaarCatFaceResource } from '../../src/resources/haar-cat-faces.js';
import type { AnyResource, InitContext, ServiceSet } from '../../src/resources/contract.js';
import { createHaarFaceResource } from '../../src/resources/haar-faces.js';
import { detectionsSchema, HaarResource } from '../../src/resources/haar.js';
import { parseParams } from '../../src/resources/validate.js';
import { assertSameBoxes, assertValidBox, CAT_CASCADE, FACE_CASCADE, imageBytes, matchBoxes, modelsDir, reference } from './haar-reference.js';

const log = pino({ level: 'silent' });

function contextFor(dir: string, opencv: OpenCvEngine): InitContext {
  const config = testConfig({ modelsDir: dir, modelsFetch: false });
  return { config, engines: { opencv, models: ModelStore.fromConfig(config) } as unknown as ServiceSet, log };
}

async function run(resource: AnyResource, image: string, fields: Record<string, unknown> = {}) {
  const input = await openImage(imageBytes(image), { maxPixels: 40_000_000 });
  const params = parseParams(resource.params, fields);
  const result = await resource.run(input, params, { signal: new AbortController().signal, log });
  assert.equal(result.kind, 'json');
  if (result.kind !== 'json') throw new Error('unreachable');
  const body = detectionsSchema.parse(result.body);
  assert.deepEqual(result.boxes, body.result, 'the boxes to draw are the boxes answered');
  for (const { box } of body.result) assertValidBox(box, input.width, input.height);
  return body.result.map((r) => r.box as Box);
}

describe('/detect and /catfacedetection resources', () => {
  let opencv: OpenCvEngine;
  const detect = createHaarFaceResource();
  const catface = createHaarCatFaceResource();

  before(async () => {
    opencv = new OpenCvEngine({ workers: 1, maxQueue: 8, modelsDir });
    await detect.init(contextFor(modelsDir, opencv));
    await catface.init(contextFor(modelsDir, opencv));
  });
  after(() => opencv.close());

  test('names, drawable JSON output, ready once initialised', () => {
    assert.equal(detect.name, 'detect');
    assert.equal(catface.name, 'catfacedetection');
    for (const r of [detect, catface]) {
      assert.deepEqual(r.status(), { ready: true });
      assert.equal(r.output.kind, 'json');
      assert.equal(r.output.kind === 'json' && r.output.drawable, true);
    }
  });

  test('detect on test_face_processing.jpg: the 17 faces native OpenCV finds', async () => {
    assertSameBoxes(await run(detect, 'test_face_processing.jpg'), reference.images['test_face_processing.jpg'].faces);
  });

  test('catfacedetection on cat_small.jpg: the one cat face native OpenCV finds', async () => {
    assertSameBoxes(await run(catface, 'cat_small.jpg'), reference.images['cat_small.jpg'].catfaces);
  });

  test('maxSide: boxes found on a smaller copy come back in original coordinates', async () => {
    const full = reference.images['test_face_processing.jpg'].faces;
    const small = await run(detect, 'test_face_processing.jpg', { maxSide: '400' });
    // At 400 px one face (the smallest) drops out; every box found overlaps its full-resolution box.
    assert.equal(small.length, 16);
    const matched = matchBoxes(full, small);
    matched.forEach((v, i) => assert.ok(v >= 0.5, `box ${JSON.stringify(small[i])} overlaps no full-resolution face (IoU ${v.toFixed(2)})`));

    const cat = await run(catface, 'cat_small.jpg', { maxSide: 500 });
    assert.equal(cat.length, 1);
    const v = matchBoxes(cat, reference.images['cat_small.jpg'].catfaces)[0];
    assert.ok(v >= 0.5, `cat face ${JSON.stringify(cat[0])} IoU ${v.toFixed(2)} with the full-resolution box`);
  });

  test('maxSide at or above the longer side changes nothing', async () => {
    assert.deepEqual(await run(detect, 'test_face_processing.jpg', { maxSide: 640 }), await run(detect, 'test_face_processing.jpg'));
  });

  describe('parameters', () => {
    test('defaults are the Python service values; strings are coerced', () => {
      assert.deepEqual(parseParams(detect.params, {}), { scaleFactor: 1.1, minNeighbors: 5, minSize: 25, draw: false });
      assert.deepEqual(parseParams(catface.params, { scaleFactor: '1.05', minNeighbors: '3', minSize: '24', maxSide: '800', draw: 'true', format: 'png' }), {
        scaleFactor: 1.05,
        minNeighbors: 3,
        minSize: 24,
        maxSide: 800,
        draw: true,
        format: 'png',
      });
    });

    const bad: [Record<string, unknown>, string, RegExp][] = [
      [{ scaleFactor: '1' }, 'scaleFactor', /≥ 1\.01/],
      [{ scaleFactor: 2.5 }, 'scaleFactor', /≤ 2/],
      [{ scaleFactor: 'fast' }, 'scaleFactor', /number/],
      [{ minNeighbors: -1 }, 'minNeighbors', /≥ 0/],
      [{ minNeighbors: '51' }, 'minNeighbors', /≤ 50/],
      [{ minNeighbors: '2.5' }, 'minNeighbors', /integer/],
      [{ minSize: 0 }, 'minSize', /≥ 1/],
      [{ minSize: 10_001 }, 'minSize', /≤ 10000/],
      [{ maxSide: 31 }, 'maxSide', /≥ 32/],
      [{ maxSide: '20001' }, 'maxSide', /≤ 20000/],
      [{ draw: 'maybe' }, 'draw', /true or false/],
      [{ format: 'gif' }, 'format', /jpeg, png, webp/],
      [{ scalefactor: 1.2 }, 'scalefactor', /unknown parameter/],
    ];
    for (const [fields, name, why] of bad) {
      test(`${JSON.stringify(fields)} is refused naming ${name}`, () => {
        for (const resource of [detect, catface]) {
          assert.throws(
            () => parseParams(resource.params, fields),
            (err: unknown) => {
              assert.ok(err instanceof AppError);
              assert.equal(err.status, 400);
              assert.ok(err.publicMessage.includes(name), err.publicMessage);
              assert.match(err.publicMessage, why);
              return true;
            },
          );
        }
      });
    }
  });

  describe('a missing or broken cascade', () => {
    let emptyDir: string;
    let brokenDir: string;
    let brokenEngine: OpenCvEngine;
    before(async () => {
      emptyDir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-haar-empty-'));
      brokenDir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-haar-broken-'));
      const broken = '<?xml version="1.0"?>\n<opencv_storage><cascade>not a cascade</cascade></opencv_storage>\n';
      await writeFile(path.join(brokenDir, FACE_CASCADE), broken);
      await writeFile(path.join(brokenDir, 'custom_cascade.xml'), broken);
      brokenEngine = new OpenCvEngine({ workers: 1, maxQueue: 8, modelsDir: brokenDir });
    });
    after(async () => {
      await brokenEngine.close();
      await rm(emptyDir, { recursive: true, force: true });
      await rm(brokenDir, { recursive: true, force: true });
    });

    test('missing file: not ready, the reason names the file and the directory, run answers 503', async () => {
      const faces = createHaarFaceResource();
      const cats = createHaarCatFaceResource();
      await faces.init(contextFor(emptyDir, opencv));
      await cats.init(contextFor(emptyDir, opencv));
      assert.deepEqual(faces.status(), { ready: false, reason: `${FACE_CASCADE} missing in ${emptyDir}; run npm run models` });
      assert.deepEqual(cats.status(), { ready: false, reason: `${CAT_CASCADE} missing in ${emptyDir}; run npm run models` });
      const input = await openImage(imageBytes('test_face_processing.jpg'), { maxPixels: 40_000_000 });
      await assert.rejects(faces.run(input, parseParams(faces.params, {}), { signal: new AbortController().signal, log }), (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.code, 'MODEL_UNAVAILABLE');
        assert.equal(err.status, 503);
        assert.ok(err.publicMessage.includes(`${FACE_CASCADE} missing in ${emptyDir}`), err.publicMessage);
        return true;
      });
    });

    test('a manifest cascade with the wrong bytes is refused by its sha256 before OpenCV sees it', async () => {
      const faces = createHaarFaceResource();
      await faces.init(contextFor(brokenDir, brokenEngine));
      const status = faces.status();
      assert.equal(status.ready, false);
      assert.match(status.ready ? '' : status.reason, new RegExp(`^${FACE_CASCADE} in .* has sha256 [0-9a-f]{64} .*expects 6281df13`));
    });

    test('unparseable file (a cascade outside the manifest): not ready with a reason, and the worker survives', async () => {
      const custom = new HaarResource({ name: 'custom', summary: 'custom', description: 'custom', cascade: 'custom_cascade.xml' });
      await custom.init(contextFor(brokenDir, brokenEngine));
      assert.deepEqual(custom.status(), { ready: false, reason: 'custom_cascade.xml could not be loaded: OpenCV could not parse it' });
      const edges = await brokenEngine.canny({ data: new Uint8Array(16 * 16 * 3), width: 16, height: 16, channels: 3 }, 100, 200);
      assert.equal(edges.width, 16);
    });
  });
});
