import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { AppError } from '../../src/errors.js';
import { loadManifest } from '../../src/models/manifest.js';
import { createPredictResource } from '../../src/resources/predict.js';
import { capturingLogger, imageInput, MODELS_DIR, onnxEngines, runContext, type TestEngines } from '../engines/onnx-fixtures.js';
import { createTestApp } from '../helpers/app.js';
import { loopbackFetch } from '../helpers/net.js';
import { image } from '../helpers/paths.js';
import { localServer, type LocalServer } from '../helpers/photo-server.js';

const MODEL = 'mobilenetv2-12-int8.onnx';
const LABELS = 'imagenet_classes.txt';

describe('model files at startup (through /predict)', () => {
  let server: LocalServer;
  let baseUrl: string;
  let hits: string[];
  let fail: Set<string>;
  let dir: string;
  let env: TestEngines | undefined;
  /** Model downloads may only go to the local mirror. */
  const fetchImpl = loopbackFetch;

  before(async () => {
    // A mirror of the shared models directory: /<file>.
    server = await localServer({
      fallback: (req, res) => {
        const file = decodeURIComponent(req.url!.slice(1));
        hits.push(file);
        if (fail.has(file)) return void res.writeHead(503).end();
        readFile(path.join(MODELS_DIR, file)).then(
          (data) => res.writeHead(200, { 'content-length': String(data.length) }).end(data),
          () => res.writeHead(404).end(),
        );
      },
    });
    baseUrl = server.base;
  });
  after(() => server.close());
  beforeEach(async () => {
    hits = [];
    fail = new Set();
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-store-'));
  });
  afterEach(async () => {
    await env?.close();
    env = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  test('missing model, fetching off: not ready naming the file and the command, 503 on run', async () => {
    await copyFile(path.join(MODELS_DIR, LABELS), path.join(dir, LABELS));
    env = onnxEngines({ dir });
    const predict = createPredictResource();
    const { log, lines } = capturingLogger();
    await predict.init({ config: env.config, engines: env.engines, log });
    const reason = `${MODEL} missing in ${dir}; run npm run models`;
    assert.deepEqual(predict.status(), { ready: false, reason });
    assert.ok(lines().some((l) => l.msg === reason && l.level === 40));
    await assert.rejects(predict.run(await imageInput(image('car.jpg')), { top: 5 }, runContext()), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.status, 503);
      assert.equal(err.code, 'MODEL_UNAVAILABLE');
      assert.equal(err.publicMessage, `/predict is unavailable: ${reason}`);
      return true;
    });
    assert.deepEqual(hits, []);
  });

  test('missing files, fetching on: fetched in the background (all manifest files), then the route loads and works', async () => {
    env = onnxEngines({ dir, fetchMissing: true, baseUrl, retryDelaysMs: [], fetchImpl });
    const predict = createPredictResource();
    const { log, lines } = capturingLogger();
    await predict.init({ config: env.config, engines: env.engines, log });
    const status = predict.status();
    assert.equal(status.ready, false);
    assert.match((status as { reason: string }).reason, /mobilenetv2-12-int8\.onnx missing in .*; run npm run models; imagenet_classes\.txt missing in .* \(fetching it in the background\)$/);
    await predict.settled();
    assert.deepEqual(predict.status(), { ready: true });
    const answer = await predict.run(await imageInput(image('car.jpg')), { top: 1 }, runContext());
    assert.deepEqual(answer, { kind: 'json', body: { success: true, predictions: [{ label: 'sports car', probability: 0.3667 }] } });
    // Everything else in the manifest comes too (the Haar routes poll for their cascades). Asking the
    // store for each file joins its background download (one per file, however many ask).
    await Promise.all(env.engines.models.manifest.files.map((f) => env!.engines.models.download(f.file, log)));
    assert.deepEqual((await readdir(dir)).sort(), [
      'coco_classes.txt',
      'espcn-x3.onnx',
      'haarcascade_frontalcatface_extended.xml',
      'haarcascade_frontalface_alt.xml',
      'imagenet_classes.txt',
      'mobilenetv2-12-int8.onnx',
      'yolox_nano.onnx',
    ]);
    assert.equal(hits.filter((h) => h === MODEL).length, 1, 'one download per file, however many ask');
    assert.ok(lines().some((l) => /^fetched mobilenetv2-12-int8\.onnx \(3655640 bytes, sha256 ok\) from http:\/\/127\.0\.0\.1:\d+\/mobilenetv2-12-int8\.onnx$/.test(l.msg)));
  });

  test('a file with the wrong sha256 is refused with a clear log line and never replaced', async () => {
    await copyFile(path.join(MODELS_DIR, LABELS), path.join(dir, LABELS));
    const model = await readFile(path.join(MODELS_DIR, MODEL));
    model[model.length - 10] ^= 1;
    await writeFile(path.join(dir, MODEL), model);
    env = onnxEngines({ dir, fetchMissing: true, baseUrl, retryDelaysMs: [], fetchImpl });
    const predict = createPredictResource();
    const { log, lines } = capturingLogger();
    await predict.init({ config: env.config, engines: env.engines, log });
    const status = predict.status();
    assert.equal(status.ready, false);
    const expected = new RegExp(
      `^mobilenetv2-12-int8\\.onnx in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has sha256 [0-9a-f]{64} \\(3655640 bytes\\), ` +
        'the manifest expects 83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f \\(3655640 bytes\\): refusing to load it; delete it and run npm run models$',
    );
    assert.match((status as { reason: string }).reason, expected);
    assert.ok(lines().some((l) => l.level === 50 && expected.test(l.msg)), 'logged as an error');
    assert.equal(env.engines.onnx.has('mobilenetv2-12-int8'), false, 'no session was created');
    assert.ok(!hits.includes(MODEL), 'not re-downloaded behind the operator\'s back');
  });

  test('a fetch that keeps failing leaves the route unavailable with the reason', async () => {
    await copyFile(path.join(MODELS_DIR, LABELS), path.join(dir, LABELS));
    fail.add(MODEL);
    env = onnxEngines({ dir, fetchMissing: true, baseUrl, retryDelaysMs: [10, 10], fetchImpl });
    const predict = createPredictResource();
    const { log, lines } = capturingLogger();
    await predict.init({ config: env.config, engines: env.engines, log });
    await predict.settled();
    const status = predict.status();
    assert.equal(status.ready, false);
    assert.match((status as { reason: string }).reason, /missing in .*; run npm run models \(fetching failed: http:\/\/127\.0\.0\.1:\d+\/mobilenetv2-12-int8\.onnx: HTTP 503 Service Unavailable\)$/);
    assert.equal(hits.filter((h) => h === MODEL).length, 3, 'three attempts');
    assert.ok(lines().some((l) => l.level === 50 && /^giving up fetching mobilenetv2-12-int8\.onnx; run npm run models$/.test(l.msg)));
  });

  test('CVSERVE_MODELS_FETCH_TIMEOUT_MS through the app: a download that stalls is given up after the limit', { timeout: 60_000 }, async () => {
    // The mirror sends the headers and a few bytes, then nothing more, ever.
    const stalled: import('node:http').ServerResponse[] = [];
    server.routes.set(`/stall/${MODEL}`, (_req, res) => {
      res.writeHead(200, { 'content-length': '3655640' });
      res.write(Buffer.alloc(16));
      stalled.push(res);
    });
    const captured = capturingLogger();
    const svc = await createTestApp(
      { modelsDir: dir, modelsFetch: true, modelsBaseUrl: `${baseUrl}/stall`, modelsFetchTimeoutMs: 100 },
      { resources: [createPredictResource()], logger: captured.log },
    );
    try {
      const failed = await captured.waitFor((l) => l.level === 40 && l.msg.startsWith(`fetching ${MODEL} failed`));
      assert.match(failed.msg, /\/stall\/mobilenetv2-12-int8\.onnx: .*(aborted due to timeout|timeout)/i);
      assert.equal(stalled.length, 1, 'one download was started and is still stalled');
      assert.equal(svc.resources[0]!.status().ready, false);
    } finally {
      for (const res of stalled) res.destroy();
      await svc.close();
    }
  });
});
