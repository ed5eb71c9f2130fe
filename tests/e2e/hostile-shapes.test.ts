import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { testConfig } from '../../src/config.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { localServer, serveBytes, type LocalServer } from '../helpers/photo-server.js';
import { flatImage, flatPng, MAX_SIDE, type ShapeFormat } from '../helpers/shapes.js';
import { REFUSED } from './hostile-shapes.expected.js';

/**
 * The hostile-shape corpus (issue 12): thin and huge images, made by the test, sent to every route
 * every way. Each answer must be the one ./hostile-shapes.expected.ts states for that route and shape
 * (served, or refused with that status and code), never a 5xx, within a CPU-time budget the harness
 * measures (all threads of this process: app, workers, libvips), and the process must stay under a
 * memory ceiling. A refusal is decided from the header and costs next to nothing.
 */

const LIMIT = testConfig().maxPixels; // 40 M
const REFUSAL_CPU_MS = 500;
const WORK_CPU_MS = 30_000;
const PEAK_RSS_CEILING_MB = 4096;

type Way = 'raw' | 'multipart' | 'json' | 'url';

interface Outcome {
  route: string;
  shape: string;
  way: Way;
  status: number;
  code?: string;
  cpuMs: number;
}

async function timedCpu<T>(work: () => Promise<T>): Promise<{ result: T; cpuMs: number }> {
  const start = process.cpuUsage();
  const result = await work();
  const used = process.cpuUsage(start);
  return { result, cpuMs: (used.user + used.system) / 1000 };
}

const shapeKey = (shape: string, way: Way) => (way === 'raw' ? shape : `${shape} ${way}`);

/** The table's answer for a route and shape: the refusal listing it, else served. */
function expectedAnswer(route: string, key: string): string {
  const refusals = REFUSED[route];
  assert.ok(refusals, `${route} is in the table of expected answers`);
  const listed = Object.entries(refusals).filter(([, shapes]) => shapes.includes(key));
  assert.ok(listed.length <= 1, `${route} ${key} is listed once`);
  return listed[0]?.[0] ?? '200';
}

describe('hostile shapes: every route, every way, thin and huge images', { timeout: 3_600_000 }, () => {
  let svc: CvServe;
  let host: LocalServer;
  let routes: string[];
  const outcomes: Outcome[] = [];

  before(async () => {
    svc = await createTestApp({ allowPrivateNetworks: true });
    routes = svc.resources.map((r) => `/${r.name}`);
    host = await localServer();
  });
  after(async () => {
    await host?.close();
    await svc?.close();
  });

  async function send(route: string, bytes: Buffer, way: Way, shape: string): Promise<Outcome> {
    const { result: res, cpuMs } = await timedCpu(async () => {
      switch (way) {
        case 'raw':
          return request(svc.app).post(route).set('Content-Type', 'application/octet-stream').send(bytes);
        case 'multipart':
          return request(svc.app).post(route).attach('image', bytes, 'shape.bin');
        case 'json':
          return request(svc.app).post(route).send({ imageBase64: bytes.toString('base64') });
        case 'url': {
          host.routes.set('/shape', serveBytes(bytes));
          return request(svc.app).get(route).query({ url: host.url('/shape') });
        }
      }
    });
    const outcome: Outcome = { route, shape, way, status: res.status, code: res.body?.code, cpuMs };
    outcomes.push(outcome);
    assert.ok(res.status < 500, `${route} ${shape} (${way}): ${brief(res)}`);
    assert.equal(res.status === 200 ? '200' : `${res.status} ${res.body?.code}`, expectedAnswer(route, shapeKey(shape, way)), `${route} ${shape} (${way}): ${brief(res)}`);
    const budget = res.status < 300 ? WORK_CPU_MS : REFUSAL_CPU_MS;
    assert.ok(cpuMs < budget, `${route} ${shape} (${way}): ${res.status} took ${Math.round(cpuMs)} ms CPU, budget ${budget}`);
    return outcome;
  }

  const thinSizes = [...Array.from({ length: 25 }, (_, k) => 2 ** (k + 1)), LIMIT, LIMIT + 1];

  it('1×N and N×1 PNGs, N from 2 to the pixel limit in powers of two and just over, on every route', async () => {
    for (const n of thinSizes) {
      for (const [w, h] of [
        [1, n],
        [n, 1],
      ] as const) {
        const png = flatPng(w, h);
        for (const route of routes) {
          const o = await send(route, png, 'raw', `${w}x${h}`);
          if (w * h > LIMIT) assert.equal(o.code, 'IMAGE_TOO_LARGE', `${route} ${w}x${h}`);
        }
      }
    }
  });

  it('N×N at the pixel limit is served or refused by its cost; just over is refused from the header', async () => {
    const side = Math.floor(Math.sqrt(LIMIT));
    for (const [s, over] of [
      [side, false],
      [side + 1, true],
    ] as const) {
      const png = flatPng(s, s);
      for (const route of routes) {
        const o = await send(route, png, 'raw', `${s}x${s}`);
        if (over) assert.equal(o.code, 'IMAGE_TOO_LARGE', `${route} ${s}x${s}`);
      }
    }
  });

  it('rows the decode memory cannot hold (RGBA, 16-bit gray + alpha) are refused from the header', async () => {
    for (const [name, layout] of [
      ['rgba', { channels: 4 }],
      ['ga16', { channels: 2, bitDepth: 16 }],
    ] as const) {
      const png = flatPng(LIMIT, 1, layout);
      for (const route of routes) {
        const o = await send(route, png, 'raw', `${name} ${LIMIT}x1`);
        assert.equal(o.code, 'IMAGE_TOO_LARGE', `${route} ${name}`);
      }
    }
  });

  it('every image format at thin shapes up to the largest side it can hold', async () => {
    const formats: ShapeFormat[] = ['jpeg', 'webp', 'gif', 'tiff', 'avif'];
    for (const format of formats) {
      const longest = Math.min(MAX_SIDE[format], 65_536);
      for (const [w, h] of [
        [1, 2],
        [2, 1],
        [1, 4096],
        [4096, 1],
        [1, longest],
        [longest, 1],
      ] as const) {
        const bytes = await flatImage(w, h, format);
        for (const route of routes) await send(route, bytes, 'raw', `${format} ${w}x${h}`);
      }
    }
  });

  it('every input way, at a thin shape and at the limit', async () => {
    const side = Math.floor(Math.sqrt(LIMIT));
    for (const [w, h] of [
      [1, 65_536],
      [side + 1, side + 1],
    ] as const) {
      const png = flatPng(w, h);
      for (const way of ['multipart', 'json', 'url'] as const) {
        for (const route of routes) await send(route, png, way, `${w}x${h}`);
      }
    }
  });

  it('the process stays under its memory ceiling, and the costliest answers are listed', (t) => {
    const peakMb = process.resourceUsage().maxRSS / 1024;
    const costliest = [...outcomes].sort((a, b) => b.cpuMs - a.cpuMs).slice(0, 8);
    t.diagnostic(`${outcomes.length} requests; peak RSS ${Math.round(peakMb)} MB; refused ${outcomes.filter((o) => o.status >= 400).length}`);
    for (const o of costliest) t.diagnostic(`${o.route} ${o.shape} ${o.way}: ${o.status} ${o.code ?? ''} ${Math.round(o.cpuMs)} ms CPU`);
    assert.ok(outcomes.length > 500, `${outcomes.length} requests`);
    // Every route has its row, and every refusal the table lists was asked for (no stale entries).
    assert.deepEqual(Object.keys(REFUSED).sort(), [...routes].sort());
    const asked = new Set(outcomes.map((o) => `${o.route} ${shapeKey(o.shape, o.way)}`));
    const stale = Object.entries(REFUSED).flatMap(([route, refusals]) => Object.values(refusals).flat().map((key) => `${route} ${key}`)).filter((k) => !asked.has(k));
    assert.deepEqual(stale, []);
    assert.ok(peakMb < PEAK_RSS_CEILING_MB, `peak RSS ${Math.round(peakMb)} MB`);
  });
});
