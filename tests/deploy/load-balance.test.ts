/**
 * Two cvserve processes behind a round-robin proxy on 127.0.0.1: requests spread over both, and
 * stopping one with SIGTERM while requests flow loses none (the proxy retries only requests that
 * never reached a server; the stopping server's drain finishes the ones it has). Throughput with one
 * vs two processes is measured by scripts/scale.ts, not asserted here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startRoundRobinProxy, type RoundRobinProxy } from '../../scripts/lb-proxy.js';
import { runLoad } from '../../scripts/lib/load.js';
import { startReplica, waitReady, type ServerProcess } from '../../scripts/lib/server-process.js';
import { edgeIoU, grayPixels } from '../helpers/images.js';
import { image, MODELS_DIR, reference, REPO_ROOT } from '../helpers/paths.js';

const photo = readFileSync(image('test_face_processing.jpg'));
const canny = () => ({ path: '/canny?format=png', headers: { 'Content-Type': 'image/jpeg' }, body: photo });

describe('two replicas behind a round-robin proxy', { timeout: 300_000 }, () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let proxy: RoundRobinProxy;
  let expected: Buffer;

  before(async () => {
    [a, b] = await Promise.all([0, 1].map(() => startReplica({ cwd: REPO_ROOT, modelsDir: MODELS_DIR, env: { CVSERVE_SHUTDOWN_TIMEOUT_MS: '20000' } })));
    await Promise.all([waitReady(a.url), waitReady(b.url)]);
    proxy = await startRoundRobinProxy({ backends: [a.url, b.url], healthIntervalMs: 200 });
    // The answer every request must get: the edge map, byte for byte the same from either replica.
    const res = await fetch(`${a.url}/canny?format=png`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: photo });
    assert.equal(res.status, 200);
    expected = Buffer.from(await res.arrayBuffer());
    const ours = await grayPixels(expected);
    const ref = await grayPixels(reference('canny_test_face_processing.png'));
    assert.ok(edgeIoU(ours.data, ref.data) >= 0.99);
  });

  after(async () => {
    await proxy?.close();
    await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')]);
  });

  it('spreads requests over both replicas', async () => {
    const report = await runLoad({ baseUrl: proxy.url, total: 40, concurrency: 4, request: canny, keepBodies: true });
    assert.deepEqual(report.outcomes.filter((o) => o.status !== 200).map((o) => o.status), []);
    for (const o of report.outcomes) assert.ok(o.body!.equals(expected));
    const [sa, sb] = proxy.backends;
    assert.deepEqual([sa!.answered, sb!.answered], [20, 20], 'round robin: half each');
  });

  it('loses no request when one replica gets SIGTERM mid-load', async () => {
    const [sa, sb] = proxy.backends as [(typeof proxy.backends)[0], (typeof proxy.backends)[0]];
    const base = { a: sa.answered, b: sb.answered };
    let atSignal: { answered: number; inflight: number } | undefined;
    let aExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
    const total = 150;
    const report = await runLoad({
      baseUrl: proxy.url,
      total,
      concurrency: 6,
      request: canny,
      keepBodies: true,
      onOutcome: (_o, done) => {
        // A third of the way in, with requests in flight on A.
        if (!atSignal && done >= total / 3 && sa.inflight > 0) {
          atSignal = { answered: sa.answered, inflight: sa.inflight };
          aExit = a.stop('SIGTERM', 30_000);
        }
      },
    });
    assert.ok(atSignal, 'SIGTERM was sent while A had requests in flight');
    const bad = report.outcomes.filter((o) => o.status !== 200 || !o.body!.equals(expected));
    assert.deepEqual(bad.map((o) => ({ i: o.index, status: o.status, error: o.error })), [], 'every request answered 200 with the edge map');
    assert.equal(proxy.failed, 0);
    assert.deepEqual(await aExit, { code: 0, signal: null }, 'A drained and exited cleanly');
    assert.ok(a.output.some((l) => l.includes('shutdown complete')));
    // A finished requests after the signal (its drain), B took the rest.
    assert.ok(sa.answered > atSignal.answered, 'the drain finished in-flight requests on A');
    assert.equal(sa.answered - base.a + (sb.answered - base.b), total);
    assert.ok(sb.answered - base.b > total / 2, 'B served the rest');
    console.log(`# at SIGTERM: A had ${atSignal.inflight} in flight; A answered ${sa.answered - base.a}, B ${sb.answered - base.b}; retried away from A: ${sa.retriedAway}`);
  });
});
