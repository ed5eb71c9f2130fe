/**
 * How much memory the server keeps under each allocator: glibc malloc as it is, glibc with
 * MALLOC_ARENA_MAX=2, and jemalloc preloaded (Debian's libjemalloc2). sharp/libvips on glibc
 * fragments memory across per-thread arenas; this measures whether that shows here.
 *
 *   npx tsx scripts/allocator-rss.ts [--requests 3000] [--concurrency 4] [--routes canny,predict]
 *                                    [--variants glibc,arena2,jemalloc] [--dist] [--cwd DIR]
 *
 * CVSERVE_* variables of the calling shell are passed on (worker counts, heap caps).
 *
 * Each variant: start the server on 127.0.0.1, warm up, send the same request mix, then report
 * RSS after the warm-up, after the run, after 5 s idle, and the peak (VmHWM). Loopback only.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, type LoadRequest } from './lib/load.js';
import { startServerProcess } from './lib/server-process.js';

const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const root = path.resolve(import.meta.dirname, '..');

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '4' },
    dist: { type: 'boolean', default: false },
    cwd: { type: 'string', default: root },
    images: { type: 'string', default: path.resolve(root, '../shared/images') },
    models: { type: 'string', default: process.env.CVSERVE_MODELS_DIR ?? path.resolve(root, '../shared/models') },
    variants: { type: 'string', default: 'glibc,arena2,jemalloc' },
    /** Comma-separated routes to use (default: every image route the server offers). */
    routes: { type: 'string', default: '' },
  },
});

const variants: Record<string, NodeJS.ProcessEnv> = {
  glibc: {},
  arena2: { MALLOC_ARENA_MAX: '2' },
  jemalloc: { LD_PRELOAD: JEMALLOC },
};

const photos = ['test_face_processing.jpg', 'cat_small.jpg', 'car.jpg'].map((n) => readFileSync(path.join(values.images, n)));
const small = photos[0]!;

/** The mix: every route the server offers, several sizes and output formats (decode + encode in sharp). */
function requestMix(routes: Set<string>): ((i: number) => LoadRequest)[] {
  const jpeg = { 'Content-Type': 'image/jpeg' };
  const mix: ((i: number) => LoadRequest)[] = [];
  if (routes.has('/canny')) for (const format of ['png', 'jpeg', 'webp']) mix.push((i) => ({ path: `/canny?format=${format}`, headers: jpeg, body: photos[i % photos.length] }));
  for (const route of ['detect', 'catfacedetection', 'predict', 'catdetection']) {
    if (routes.has(`/${route}`)) mix.push((i) => ({ path: `/${route}`, headers: jpeg, body: photos[i % photos.length] }));
  }
  if (routes.has('/upscale')) mix.push(() => ({ path: '/upscale?format=jpeg', headers: jpeg, body: small }));
  return mix;
}

const mib = (kib: number) => (kib / 1024).toFixed(0);

async function measure(name: string, extraEnv: NodeJS.ProcessEnv) {
  if (extraEnv.LD_PRELOAD && !existsSync(extraEnv.LD_PRELOAD)) {
    console.log(`${name}: skipped, ${extraEnv.LD_PRELOAD} is missing (apt-get install libjemalloc2)`);
    return;
  }
  const server = await startServerProcess({
    command: values.dist ? ['node', 'dist/src/server.js'] : ['node', '--import', 'tsx', 'src/server.ts'],
    cwd: values.cwd,
    env: {
      PATH: process.env.PATH,
      // CVSERVE_* settings of this shell (e.g. CVSERVE_OPENCV_WORKERS=1 for a one-CPU pod).
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CVSERVE_'))),
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      CVSERVE_MODELS_DIR: path.resolve(values.models),
      CVSERVE_MODELS_FETCH: 'off',
      ...extraEnv,
    },
  });
  try {
    // Wait until ONNX models (if any) are loaded: the root lists the routes.
    await new Promise((r) => setTimeout(r, 3000));
    const offered = ((await (await fetch(`${server.url}/`)).json()) as { routes: string[] }).routes;
    const chosen = values.routes ? values.routes.split(',').map((r) => `/${r.replace(/^\//, '')}`) : offered;
    const routes = new Set(chosen.filter((r) => offered.includes(r)));
    const mix = requestMix(routes);
    const request = (i: number) => mix[i % mix.length]!(Math.floor(i / mix.length));
    await runLoad({ baseUrl: server.url, total: 60, concurrency: Number(values.concurrency), request });
    const warm = server.rssKiB();
    const report = await runLoad({ baseUrl: server.url, total: Number(values.requests), concurrency: Number(values.concurrency), request });
    const after = server.rssKiB();
    await new Promise((r) => setTimeout(r, 5000));
    const idle = server.rssKiB();
    const failed = report.outcomes.filter((o) => o.status !== 200);
    console.log(
      `${name.padEnd(9)} routes=${mix.length} requests=${report.outcomes.length} ok=${report.ok} (${report.okPerSecond.toFixed(1)}/s)` +
        `  RSS MiB: warm ${mib(warm)}  after ${mib(after)}  idle ${mib(idle)}  peak ${mib(server.peakRssKiB())}` +
        (failed.length ? `  non-200: ${JSON.stringify(Object.fromEntries(failed.map((o) => [o.status, o.error ?? ''])))}` : ''),
    );
  } finally {
    await server.stop();
  }
}

for (const name of values.variants.split(',')) {
  const env = variants[name];
  if (!env) throw new Error(`unknown variant ${name} (${Object.keys(variants).join(', ')})`);
  await measure(name, env);
}
