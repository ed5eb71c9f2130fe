/**
 * Does throughput scale with replicas? Starts two cvserve processes sized like one pod each (one
 * OpenCV worker, one ONNX worker with one thread) and measures answers per second through the
 * round-robin proxy, first with one backend, then with both. On a 2-core machine the target is
 * ≥ 1.6x. Loopback only; bounded by --requests.
 *
 *   npx tsx scripts/scale.ts [--route detect] [--image test_face_processing.jpg] [--requests 300]
 *                            [--concurrency 8] [--rounds 2] [--dist]
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startRoundRobinProxy } from './lb-proxy.js';
import { runLoad } from './lib/load.js';
import { startReplica, waitReady } from './lib/server-process.js';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    route: { type: 'string', default: 'detect' },
    query: { type: 'string', default: '' },
    image: { type: 'string', default: 'test_face_processing.jpg' },
    images: { type: 'string', default: path.resolve(root, '../shared/images') },
    models: { type: 'string', default: process.env.CVSERVE_MODELS_DIR ?? path.resolve(root, '../shared/models') },
    requests: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
    dist: { type: 'boolean', default: false },
  },
});

const body = readFileSync(path.join(values.images, values.image));
const request = () => ({ path: `/${values.route}${values.query ? `?${values.query}` : ''}`, headers: { 'Content-Type': 'image/jpeg' }, body });
const total = Number(values.requests);
const concurrency = Number(values.concurrency);

const replicas = await Promise.all([0, 1].map(() => startReplica({ cwd: root, modelsDir: path.resolve(values.models), dist: values.dist, env: { LOG_LEVEL: 'info' } })));
try {
  await Promise.all(replicas.map((r) => waitReady(r.url)));
  const measure = async (count: 1 | 2) => {
    const proxy = await startRoundRobinProxy({ backends: replicas.slice(0, count).map((r) => r.url) });
    try {
      await runLoad({ baseUrl: proxy.url, total: Math.max(count * 4, 20), concurrency, request }); // warm-up
      const report = await runLoad({ baseUrl: proxy.url, total, concurrency, request });
      const bad = report.outcomes.filter((o) => o.status !== 200);
      if (bad.length) throw new Error(`${bad.length} answers were not 200: ${JSON.stringify(bad.slice(0, 3).map((o) => o.status || o.error))}`);
      return report.okPerSecond;
    } finally {
      await proxy.close();
    }
  };
  const ratios: number[] = [];
  for (let round = 1; round <= Number(values.rounds); round++) {
    const one = await measure(1);
    const two = await measure(2);
    ratios.push(two / one);
    // Other work on the machine takes cores from the second process: show how busy it was.
    console.log(
      `round ${round}: /${values.route} ${values.image}, ${total} requests, concurrency ${concurrency}: ` +
        `1 process ${one.toFixed(1)}/s, 2 processes ${two.toFixed(1)}/s, ${(two / one).toFixed(2)}x (load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores)`,
    );
  }
  const median = [...ratios].sort((x, y) => x - y)[Math.floor(ratios.length / 2)]!;
  console.log(`scaling 1 → 2 processes: ${median.toFixed(2)}x (target ≥ 1.6x on 2 cores)`);
} finally {
  await Promise.all(replicas.map((r) => r.stop()));
}
