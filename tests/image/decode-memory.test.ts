import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import request from 'supertest';
import { testConfig } from '../../src/config.js';
import { openImage } from '../../src/image/decode.js';
import { bytesPerSample, DecodeBudget, decodeMemoryEstimate } from '../../src/image/decode-memory.js';
import { createTestApp } from '../helpers/app.js';
import { brief, listen } from '../helpers/http.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { flatPng } from '../helpers/shapes.js';
import { deferred, until } from '../helpers/wait.js';

const MiB = 1024 * 1024;

describe('decode memory: the estimate', () => {
  it('rows cost by their width, alpha and sample size; the frame by its pixels', () => {
    assert.equal(decodeMemoryEstimate({ rowWidth: 40_000_000, pixels: 40_000_000, channels: 3, bytesPerSample: 1 }), 40_000_000 * 44);
    assert.equal(decodeMemoryEstimate({ rowWidth: 1, pixels: 40_000_000, channels: 3, bytesPerSample: 1 }), 40 + 160_000_000);
    assert.equal(decodeMemoryEstimate({ rowWidth: 1000, pixels: 1_000_000, channels: 4, bytesPerSample: 2 }), 1000 * 160 + 4_000_000);
    assert.equal(decodeMemoryEstimate({ rowWidth: 1000, pixels: 1_000_000, channels: 2, bytesPerSample: 1 }), 1000 * 80 + 4_000_000);
    assert.deepEqual(['uchar', 'ushort', 'float', 'double', undefined].map(bytesPerSample), [1, 2, 4, 8, 1]);
  });

  // Each decode in a fresh process, so its peak RSS is its own: the estimate must cover what libvips
  // really holds for every PNG layout, whole (rgb()) and resized on the way (/ocr's pipeline).
  const dir = mkdtempSync(path.join(tmpdir(), 'cvserve-decode-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const WIDTH = 4_000_000;
  for (const channels of [1, 2, 3, 4] as const) {
    for (const bitDepth of [8, 16] as const) {
      it(`covers the measured peak of a ${WIDTH}x1 PNG, ${channels} channels, ${bitDepth}-bit`, async (t) => {
        const file = path.join(dir, `${channels}-${bitDepth}.png`);
        writeFileSync(file, flatPng(WIDTH, 1, { channels, bitDepth }));
        for (const how of ['rgb', 'resize']) {
          const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'tests/helpers/decode-peak.ts'), file, how], { cwd: REPO_ROOT });
          const { peakBytes, estimateBytes } = JSON.parse(stdout) as { peakBytes: number; estimateBytes: number };
          t.diagnostic(`${how}: peak ${Math.round(peakBytes / MiB)} MiB, estimate ${Math.round(estimateBytes / MiB)} MiB`);
          assert.ok(peakBytes > WIDTH, `${how}: a real decode (${Math.round(peakBytes / MiB)} MiB)`);
          assert.ok(peakBytes <= estimateBytes, `${how}: peak ${Math.round(peakBytes / MiB)} MiB, estimate ${Math.round(estimateBytes / MiB)} MiB`);
        }
      });
    }
  }
});

describe('decode memory: the budget', () => {
  /** A decode that lasts until the test ends it. */
  function stand(budget: DecodeBudget, bytes: number, signal?: AbortSignal) {
    const done = deferred();
    let started = false;
    const result = budget.hold(bytes, signal, async () => {
      started = true;
      await done.promise;
      return bytes;
    });
    return { result, end: () => done.resolve(), started: () => started };
  }

  it('runs decodes side by side while they fit, then one waits for room', async () => {
    const budget = new DecodeBudget(100);
    const a = stand(budget, 60);
    const b = stand(budget, 40);
    await until(() => a.started() && b.started(), 'both run');
    const c = stand(budget, 10);
    await Promise.resolve();
    assert.deepEqual(budget.stats(), { capacityBytes: 100, heldBytes: 100, running: 2, waiting: 1 });
    assert.equal(c.started(), false);
    a.end();
    assert.equal(await a.result, 60);
    await until(() => c.started(), 'c runs once a is done');
    assert.deepEqual(budget.stats(), { capacityBytes: 100, heldBytes: 50, running: 2, waiting: 0 });
    b.end();
    c.end();
    await Promise.all([b.result, c.result]);
    assert.deepEqual(budget.stats(), { capacityBytes: 100, heldBytes: 0, running: 0, waiting: 0 });
  });

  it('in arrival order: a small decode does not overtake a large one waiting', async () => {
    const budget = new DecodeBudget(100);
    const a = stand(budget, 50);
    const large = stand(budget, 100);
    const small = stand(budget, 10);
    await until(() => a.started(), 'a runs');
    await Promise.resolve();
    assert.equal(small.started(), false, 'the small one waits behind the large one');
    a.end();
    await until(() => large.started(), 'the large one runs');
    assert.equal(small.started(), false);
    large.end();
    await until(() => small.started(), 'then the small one');
    small.end();
    await Promise.all([a.result, large.result, small.result]);
  });

  it('a wait ends with the signal, holding nothing, and lets the next one in', async () => {
    const budget = new DecodeBudget(100);
    const a = stand(budget, 90);
    const abort = new AbortController();
    const waiting = stand(budget, 50, abort.signal);
    const behind = stand(budget, 10);
    await until(() => a.started() && budget.stats().waiting === 2, 'two wait');
    const reason = new Error('deadline');
    abort.abort(reason);
    await assert.rejects(waiting.result, (err) => err === reason);
    await until(() => behind.started(), 'the one behind runs beside a');
    assert.equal(waiting.started(), false);
    a.end();
    behind.end();
    await Promise.all([a.result, behind.result]);
    assert.deepEqual(budget.stats(), { capacityBytes: 100, heldBytes: 0, running: 0, waiting: 0 });
  });

  it('a failed decode gives its memory back', async () => {
    const budget = new DecodeBudget(100);
    await assert.rejects(budget.hold(80, undefined, () => Promise.reject(new Error('corrupt'))), /corrupt/);
    assert.equal(budget.stats().heldBytes, 0);
  });
});

describe('decode memory: images', () => {
  it('an image whose estimate alone is over the budget is refused from its header', async () => {
    const budget = new DecodeBudget(testConfig().decodeMemoryBytes);
    const rgba = flatPng(40_000_000, 1, { channels: 4 });
    const cpu = process.cpuUsage();
    await assert.rejects(openImage(rgba, { maxPixels: 40_000_000, budget }), (err: { code?: string; publicMessage?: string }) => {
      assert.equal(err.code, 'IMAGE_TOO_LARGE');
      assert.match(err.publicMessage ?? '', /needs about 3,205 MiB .* the limit is 2,048 MiB \(CVSERVE_DECODE_MEMORY_BYTES\)/);
      return true;
    });
    const used = process.cpuUsage(cpu);
    assert.ok((used.user + used.system) / 1000 < 500, 'no decode');
    // The default admits the widest 8-bit RGB image the pixel limit allows.
    const rgb = await openImage(flatPng(40_000_000, 1), { maxPixels: 40_000_000, budget });
    assert.equal(rgb.decodeBytes, 40_000_000 * 44);
  });

  it('a request waits while decode memory is taken, then is served', async () => {
    const svc = await createTestApp();
    try {
      const budget = svc.engines.decodeBudget;
      const taken = deferred();
      const holder = budget.hold(budget.capacityBytes, undefined, () => taken.promise);
      const served = request(svc.app).post('/canny').set('Content-Type', 'image/png').send(flatPng(64, 48)).then((res) => res);
      await until(() => budget.stats().waiting === 1, 'the request waits for decode memory');
      const metrics = await request(svc.app).get('/metrics');
      assert.match(metrics.text, /^cvserve_decodes_waiting 1$/m);
      assert.match(metrics.text, new RegExp(`^cvserve_decode_memory_held_bytes ${budget.capacityBytes}$`, 'm'));
      taken.resolve();
      await holder;
      const res = await served;
      assert.equal(res.status, 200, brief(res));
      assert.deepEqual(budget.stats(), { capacityBytes: budget.capacityBytes, heldBytes: 0, running: 0, waiting: 0 });
    } finally {
      await svc.close();
    }
  });

  it('a request whose client leaves while it waits leaves the line, holding nothing', async () => {
    const svc = await createTestApp();
    const server = await listen(svc.handler);
    const taken = deferred();
    try {
      const budget = svc.engines.decodeBudget;
      const holder = budget.hold(budget.capacityBytes, undefined, () => taken.promise);
      const leaving = new AbortController();
      const gone = fetch(`${server.url}/canny`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: new Uint8Array(flatPng(64, 48)), signal: leaving.signal });
      await until(() => budget.stats().waiting === 1, 'the request waits for decode memory');
      leaving.abort();
      await assert.rejects(gone, { name: 'AbortError' });
      await until(() => budget.stats().waiting === 0, 'the request leaves the line');
      assert.deepEqual(budget.stats(), { capacityBytes: budget.capacityBytes, heldBytes: budget.capacityBytes, running: 1, waiting: 0 });
      taken.resolve();
      await holder;
      assert.equal(budget.stats().heldBytes, 0);
    } finally {
      taken.resolve();
      await server.close();
      await svc.close();
    }
  });
});
