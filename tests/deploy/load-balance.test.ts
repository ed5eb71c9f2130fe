/**
 * Two cvserve processes behind a round-robin proxy on 127.0.0.1: requests spread over both, and
 * stopping one with SIGTERM while it has requests in flight loses none (the proxy retries only
 * requests that never reached a server; the stopping server's drain finishes the ones it has).
 * The in-flight requests are POST /gate of the test plugin (tests/helpers/plugins/gate.mjs), held
 * until the test sends SIGUSR2: which replica holds what when the signal comes is set up, not
 * raced. Throughput with one vs two processes is measured by scripts/scale.ts, not asserted here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startRoundRobinProxy, type RoundRobinProxy } from '../../scripts/lb-proxy.js';
import { runLoad } from '../../scripts/lib/load.js';
import { startReplica, waitReady, type ServerProcess } from '../../scripts/lib/server-process.js';
import { edgeIoU, grayPixels } from '../helpers/images.js';
import { guardedEnv } from '../helpers/net.js';
import { image, MODELS_DIR, reference, REPO_ROOT } from '../helpers/paths.js';

const PLUGINS_DIR = new URL('../helpers/plugins/', import.meta.url).pathname;
const photo = readFileSync(image('test_face_processing.jpg'));
const canny = () => ({ path: '/canny?format=png', headers: { 'Content-Type': 'image/jpeg' }, body: photo });

describe('two replicas behind a round-robin proxy', { timeout: 1_800_000 }, () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let proxy: RoundRobinProxy;
  let expected: Buffer;
  let small: Buffer;

  before(async () => {
    const env = guardedEnv({ CVSERVE_SHUTDOWN_TIMEOUT_MS: '120000', CVSERVE_REQUEST_TIMEOUT_MS: '120000', CVSERVE_PLUGINS_DIR: PLUGINS_DIR });
    // Starting is slow on a busy machine; these bounds only turn a hang into a failure.
    [a, b] = await Promise.all([0, 1].map(() => startReplica({ cwd: REPO_ROOT, modelsDir: MODELS_DIR, env, startTimeoutMs: 600_000 })));
    await Promise.all([waitReady(a.url, 600_000), waitReady(b.url, 600_000)]);
    // No readiness polling: a backend is marked down only when it refuses a connection, so the
    // rotation is exact. (The drain below relies on the retry, not on the health check.)
    proxy = await startRoundRobinProxy({ backends: [a.url, b.url], healthPath: '' });
    // The answer every request must get: the edge map, byte for byte the same from either replica.
    const res = await fetch(`${a.url}/canny?format=png`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: photo });
    assert.equal(res.status, 200);
    expected = Buffer.from(await res.arrayBuffer());
    const ours = await grayPixels(expected);
    const ref = await grayPixels(reference('canny_test_face_processing.png'));
    assert.ok(edgeIoU(ours.data, ref.data) >= 0.99);
    small = await sharp(photo).resize(64, 48).jpeg().toBuffer();
  });

  after(async () => {
    await proxy?.close();
    await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')]);
  });

  it('spreads requests over both replicas, half each', async () => {
    const report = await runLoad({ baseUrl: proxy.url, total: 40, concurrency: 4, request: canny, keepBodies: true });
    assert.deepEqual(report.outcomes.filter((o) => o.status !== 200).map((o) => o.status), []);
    for (const o of report.outcomes) assert.ok(o.body!.equals(expected), `request ${o.index}: not the expected edge map`);
    const [sa, sb] = proxy.backends;
    assert.deepEqual([sa!.answered, sb!.answered], [20, 20], 'round robin: half each');
  });

  it('loses no request when one replica gets SIGTERM with requests in flight', async () => {
    const [sa, sb] = proxy.backends as [(typeof proxy.backends)[0], (typeof proxy.backends)[0]];
    const gate = () => fetch(`${proxy.url}/gate`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array(small) });
    // Four held requests: round robin gives each replica two.
    const held = [0, 1, 2, 3].map(() => gate());
    await Promise.all([a.waitForLine(/^\[gate\] entered 2$/), b.waitForLine(/^\[gate\] entered 2$/)]);
    const base = { a: sa.answered, b: sb.answered };

    const aExit = a.stop('SIGTERM', 60_000);
    await a.waitForLine(/shutting down: no new connections/);
    // While A drains its two, new work flows: every request reaches B, directly or retried there.
    const total = 30;
    const report = await runLoad({ baseUrl: proxy.url, total, concurrency: 4, request: canny, keepBodies: true });
    const bad = report.outcomes.filter((o) => o.status !== 200 || !o.body!.equals(expected));
    assert.deepEqual(bad.map((o) => ({ i: o.index, status: o.status, error: o.error })), [], 'every request answered 200 with the edge map');
    assert.deepEqual([sa.answered - base.a, sb.answered - base.b], [0, total], 'A took nothing new; B took all of it');

    // A finishes what it had, then exits cleanly.
    a.child.kill('SIGUSR2');
    assert.deepEqual(await aExit, { code: 0, signal: null }, 'A drained and exited cleanly');
    assert.ok(a.output.some((l) => l.includes('shutdown complete')));
    assert.equal(a.countLines(/^\[gate\] entered/), 2, 'A got no new request after the signal');
    b.child.kill('SIGUSR2');
    const answers = await Promise.all(held);
    assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 200]);
    assert.deepEqual([sa.answered - base.a, sb.answered - base.b], [2, total + 2], 'the drain answered A\'s two');
    assert.equal(proxy.failed, 0);
    console.log(`# retried away from A after SIGTERM: ${sa.retriedAway}`);
  });
});
