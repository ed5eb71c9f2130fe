import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { jpegAddon } from '../../src/image/jpeg-decoder.js';
import { frigateFrame } from '../../scripts/deepstack-clients.js';
import { startServerProcess, type ServerProcess } from '../../scripts/lib/server-process.js';
import { createTestApp } from '../helpers/app.js';
import { guardedEnv } from '../helpers/net.js';
import { MODELS_DIR, REPO_ROOT } from '../helpers/paths.js';

/**
 * A server whose JPEG addon cannot load (an install without a compiler or libjpeg's headers) says so
 * at startup and answers as one with it: sharp decodes and enlarges, JavaScript packs model inputs,
 * to the same pixels and floats, so the answers are the same bytes.
 */

const PRELOAD = path.join(REPO_ROOT, 'tests', 'helpers', 'preload', 'no-jpeg-addon.cjs');
const COFFEE = readFileSync(path.join(REPO_ROOT, 'data', 'coffee.jpg'));

describe('without the JPEG addon', { timeout: 600_000 }, () => {
  let server: ServerProcess;
  let svc: CvServe;

  before(async () => {
    assert.ok(jpegAddon(), 'this test compares against a process that has the addon');
    [server, svc] = await Promise.all([
      startServerProcess({
        command: [process.execPath, '--import', 'tsx', 'src/server.ts'],
        cwd: REPO_ROOT,
        startTimeoutMs: 600_000,
        env: guardedEnv({
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          NODE_OPTIONS: `--require=${PRELOAD}`,
          HOST: '127.0.0.1',
          PORT: '0',
          LOG_LEVEL: 'info',
          CVSERVE_MODELS_DIR: MODELS_DIR,
          CVSERVE_MODELS_FETCH: 'off',
          CVSERVE_OPENCV_WORKERS: '1',
          CVSERVE_ONNX_WORKERS: '1',
          CVSERVE_ONNX_THREADS: '1',
          CVSERVE_OCR_PRELOAD: 'off',
        }),
      }),
      createTestApp(),
    ]);
  });
  after(async () => {
    await Promise.all([server?.stop(), svc?.close()]);
  });

  it('answers /canny with the same JPEG bytes, and /predict with the same classes', async () => {
    const viaSharp = await fetch(`${server.url}/canny`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: COFFEE });
    assert.equal(viaSharp.status, 200);
    assert.equal(viaSharp.headers.get('content-type'), 'image/jpeg');
    const withAddon = await request(svc.app).post('/canny').set('content-type', 'image/jpeg').send(COFFEE);
    assert.equal(withAddon.status, 200);
    assert.ok(Buffer.from(await viaSharp.arrayBuffer()).equals(withAddon.body as Buffer), 'edge-map JPEGs differ');

    const predictSharp = await fetch(`${server.url}/predict`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: COFFEE });
    const predictAddon = await request(svc.app).post('/predict').set('content-type', 'image/jpeg').send(COFFEE);
    assert.deepEqual(await predictSharp.json(), predictAddon.body);
  });

  it('answers Frigate\'s frame on /v1/vision/detection as the addon does: sharp enlarges, JavaScript packs', async () => {
    const frame = await frigateFrame(COFFEE, 320);
    const ask = (base: string) => {
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(frame)], { type: 'image/jpeg' }), 'image');
      return fetch(`${base}/v1/vision/detection`, { method: 'POST', body: form });
    };
    const withoutAddon = await ask(server.url);
    assert.equal(withoutAddon.status, 200);
    const withAddon = await request(svc.app).post('/v1/vision/detection').attach('image', frame, 'image');
    const answer = (await withoutAddon.json()) as { predictions: unknown[] };
    assert.deepEqual(answer.predictions, (withAddon.body as typeof answer).predictions);
    assert.ok(answer.predictions.length > 0, 'something was found');
  });

  it('warned at startup, naming why', async () => {
    // The log is one stream: by the line of a request it served, every startup line has been read.
    await server.waitForLine(/POST \/predict 200/);
    const warnings = server.output.filter((l) => l.includes("cvserve's addon (native/jpeg) did not load"));
    assert.equal(warnings.length, 1, 'one startup warning');
    const line = JSON.parse(warnings[0]!) as { level: number; reason: string };
    assert.equal(line.level, 40);
    assert.match(line.reason, /simulated: the JPEG addon was not built/);
  });
});
