/**
 * Soak: a few thousand mixed requests, good and hostile, against a real server process on
 * 127.0.0.1, printing the server's RSS and the OpenCV wasm heap as the run goes, to show memory
 * settling on a plateau rather than growing. Not a test: it prints numbers for a person to read.
 *
 *   npm run soak -- [--requests 3000] [--concurrency 6] [--max-seconds 600] [--opencv-workers 2]
 *                   [--arena-max 2] [--dist]
 *
 * --arena-max sets MALLOC_ARENA_MAX as the Docker image does (2); 0 leaves glibc's default.
 *
 * Every request goes to the loopback server it started; ?url= requests point at private and
 * loopback addresses and are refused before any connection (the point is the refusal path). The mix
 * includes the hostile shapes of issue 12 (thin PNGs, a Haar pyramid too large, outputs no format holds).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { runLoad, type LoadRequest } from './lib/load.js';
import { flatPng } from './lib/shapes.js';
import { startReplica, waitReady, type ServerProcess } from './lib/server-process.js';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '6' },
    'max-seconds': { type: 'string', default: '600' },
    'opencv-workers': { type: 'string', default: '2' },
    'arena-max': { type: 'string', default: '2' },
    samples: { type: 'string', default: '10' },
    dist: { type: 'boolean', default: false },
    images: { type: 'string', default: path.resolve(root, '../shared/images') },
    models: { type: 'string', default: process.env.CVSERVE_MODELS_DIR ?? path.resolve(root, '../shared/models') },
  },
});
const TOTAL = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const MAX_MS = Number(values['max-seconds']) * 1000;
const BODY_LIMIT = 8 * 1024 * 1024;

const photo = (name: string) => readFileSync(path.join(values.images, name));

/** The request mix: name → request. Good requests dominate; each hostile kind appears regularly. */
async function requestMix(): Promise<{ mix: [string, LoadRequest][]; rare: [string, LoadRequest] }> {
  const face = photo('test_face_processing.jpg');
  const cat = photo('cat_small.jpg');
  const car = photo('car.jpg');
  const tiny = await sharp(face).resize(80, 60).jpeg().toBuffer();
  const png = await sharp(face).png().toBuffer();
  const huge = await sharp(car).resize(6000, 4000, { fit: 'fill' }).jpeg({ quality: 80 }).toBuffer();
  const pngBomb = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } }).png().toBuffer().then((b) => {
    const out = Buffer.from(b);
    out.writeUInt32BE(50_000, 16);
    out.writeUInt32BE(50_000, 20); // IHDR width/height (CRC now wrong: the decoder must refuse either way)
    return out;
  });
  const raw = (route: string, body: Buffer, type = 'image/jpeg', query = ''): LoadRequest => ({ path: `/${route}${query}`, method: 'POST', headers: { 'Content-Type': type }, body });
  const json = (route: string, body: unknown): LoadRequest => ({ path: `/${route}`, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });
  const multipart = (route: string, field: string, bytes: Buffer, filename = 'image.jpg'): LoadRequest => {
    const boundary = '----cvserve-soak';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: image/jpeg\r\n\r\n`),
      bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    return { path: `/${route}`, method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body };
  };
  const good: [string, LoadRequest][] = [
    ['canny multipart', multipart('canny', 'image', face)],
    ['canny raw car', raw('canny', car, 'image/jpeg', '?format=png')],
    ['canny json', json('canny', { imageBase64: png.toString('base64'), threshold1: 50 })],
    ['detect', raw('detect', face)],
    ['detect drawn', raw('detect', face, 'image/jpeg', '?draw=true')],
    ['catfacedetection', raw('catfacedetection', cat)],
    ['predict', raw('predict', cat)],
    ['catdetection', raw('catdetection', cat)],
    ['upscale', raw('upscale', tiny)],
  ];
  const bad: [string, LoadRequest][] = [
    ['truncated jpeg', raw('canny', face.subarray(0, face.length >> 1))],
    ['png bomb', raw('detect', pngBomb, 'image/png')],
    ['not an image', raw('predict', Buffer.from('plain text, not an image'.repeat(40)))],
    ['garbage base64', json('canny', { imageBase64: '***not base64***' })],
    ['invalid json', { path: '/detect', method: 'POST', headers: { 'Content-Type': 'application/json' }, body: Buffer.from('{"imageBase64": ') }],
    ['wrong field', multipart('canny', 'file', face)],
    ['bad parameter', raw('canny', face, 'image/jpeg', '?threshold1=-5')],
    ['over the body limit', raw('canny', Buffer.alloc(BODY_LIMIT + 1024, 0xff))],
    ['private url', { path: `/canny?url=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}` }],
    ['loopback url', { path: `/predict?url=${encodeURIComponent('http://127.0.0.1:1/x.jpg')}` }],
    ['empty body', raw('catdetection', Buffer.alloc(0))],
    ['gzip body', { ...raw('canny', face), headers: { 'Content-Type': 'image/jpeg', 'Content-Encoding': 'gzip' } }],
    ['number as hex', raw('canny', face, 'image/jpeg', '?threshold1=0x10')],
  ];
  // Hostile shapes (issue 12): each is refused from its header, or served within its cost bound.
  const shapes: [string, LoadRequest][] = [
    ['predict 1x24000', raw('predict', flatPng(1, 24_000), 'image/png')],
    ['predict 1x1000000', raw('predict', flatPng(1, 1_000_000), 'image/png')],
    ['upscale 1x100000', raw('upscale', flatPng(1, 100_000), 'image/png')],
    ['upscale 1x1000000', raw('upscale', flatPng(1, 1_000_000), 'image/png')],
    ['detect car 1.01', raw('detect', car, 'image/jpeg', '?scaleFactor=1.01')],
    ['detect 6000x6000', raw('detect', flatPng(6000, 6000), 'image/png')],
    ['canny 70000x1', raw('canny', flatPng(70_000, 1), 'image/png')],
    ['catdetection 1x4M', raw('catdetection', flatPng(1, 4_000_000), 'image/png')],
    ['detect 1x4M', raw('detect', flatPng(1, 4_000_000), 'image/png')],
  ];
  // A 24-megapixel Canny now and then drives an OpenCV worker's heap past the cap: it must be retired.
  const rare: [string, LoadRequest] = ['canny 24 MP', raw('canny', huge)];
  return { mix: [...good, ...good, ...bad, ...shapes], rare };
}

/** Which request the i-th is: a fixed shuffle of the mix, and the 24 MP Canny once in 100. */
function picker(mix: [string, LoadRequest][], rare: [string, LoadRequest]): (i: number) => [string, LoadRequest] {
  return (i) => (i % 100 === 50 ? rare : mix[(i * 7919) % mix.length]!);
}

interface Sample {
  requests: number;
  seconds: number;
  rssMiB: number;
  heapMiB: number;
  maxWorkerHeapMiB: number;
  retired: number;
  crashed: number;
}

async function metric(server: ServerProcess, series: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

async function sample(server: ServerProcess, requests: number, started: number): Promise<Sample> {
  const restarts = (reason: string) => metric(server, `cvserve_pool_worker_restarts_total{pool="opencv",reason="${reason}"}`);
  const heap = await metric(server, 'cvserve_pool_heap_bytes{pool="opencv"}');
  const largest = await metric(server, 'cvserve_pool_max_worker_heap_bytes{pool="opencv"}');
  return {
    requests,
    seconds: Math.round((performance.now() - started) / 1000),
    rssMiB: Math.round(server.rssKiB() / 1024),
    heapMiB: Math.round(heap / 2 ** 20),
    maxWorkerHeapMiB: Math.round(largest / 2 ** 20),
    retired: await restarts('retired'),
    crashed: await restarts('crashed'),
  };
}

async function main(): Promise<void> {
  const { mix, rare } = await requestMix();
  const pick = picker(mix, rare);
  const server = await startReplica({
    cwd: root,
    modelsDir: values.models,
    dist: values.dist,
    env: {
      CVSERVE_OPENCV_WORKERS: values['opencv-workers'],
      CVSERVE_MAX_BODY_BYTES: String(BODY_LIMIT),
      ...(values['arena-max'] !== '0' && { MALLOC_ARENA_MAX: values['arena-max'] }),
    },
  });
  try {
    await waitReady(server.url, 120_000);
    const statuses = new Map<string, Map<number, number>>();
    const latency = new Map<string, number[]>();
    const run = async (total: number, offset: number) =>
      runLoad({
        baseUrl: server.url,
        total,
        concurrency: CONCURRENCY,
        timeoutMs: 120_000,
        request: (i) => pick(offset + i)[1],
        onOutcome: (o) => {
          const name = pick(offset + o.index)[0];
          const byStatus = statuses.get(name) ?? new Map<number, number>();
          byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
          statuses.set(name, byStatus);
          latency.set(name, [...(latency.get(name) ?? []), o.ms]);
        },
      });

    // Warm-up: every kind of request once, so lazy caches are filled before the first sample.
    await run(mix.length * 2, 0);
    await run(1, 50); // and the 24 MP Canny
    const started = performance.now();
    const samples: Sample[] = [await sample(server, 0, started)];
    const batch = Math.max(1, Math.ceil(TOTAL / Number(values.samples)));
    let done = 0;
    while (done < TOTAL && performance.now() - started < MAX_MS) {
      const n = Math.min(batch, TOTAL - done);
      await run(n, mix.length * 2 + done);
      done += n;
      samples.push(await sample(server, done, started));
      const s = samples.at(-1)!;
      console.log(`${String(s.requests).padStart(6)} requests  ${String(s.seconds).padStart(4)} s  RSS ${s.rssMiB} MiB  OpenCV heap ${s.heapMiB} MiB (largest worker ${s.maxWorkerHeapMiB} MiB)  retired ${s.retired}  crashed ${s.crashed}`);
    }
    await new Promise((r) => setTimeout(r, 5000));
    const idle = await sample(server, done, started);

    console.log('\nanswers by request kind (status: count; median latency under load):');
    for (const [name, byStatus] of [...statuses].sort()) {
      const ms = [...latency.get(name)!].sort((a, b) => a - b);
      const median = Math.round(ms[Math.floor(ms.length / 2)]!);
      console.log(`  ${name.padEnd(22)} ${[...byStatus].sort().map(([s, c]) => `${s}: ${c}`).join(', ').padEnd(12)} ${median} ms`);
    }
    // 503 (busy) and 504 (over the deadline) are answers by design under this load; anything else 5xx, or no answer, is a fault.
    const faults = [...statuses.values()].flatMap((m) => [...m].filter(([s]) => s === 0 || (s >= 500 && s !== 503 && s !== 504))).reduce((n, [, c]) => n + c, 0);
    const half = samples.slice(Math.floor(samples.length / 2));
    const spread = Math.max(...half.map((s) => s.rssMiB)) - Math.min(...half.map((s) => s.rssMiB));
    console.log(`\nMALLOC_ARENA_MAX=${values['arena-max'] === '0' ? '(glibc default)' : values['arena-max']}, ${values['opencv-workers']} OpenCV workers, concurrency ${CONCURRENCY}`);
    console.log(`RSS at start ${samples[0]!.rssMiB} MiB, at end ${samples.at(-1)!.rssMiB} MiB, after 5 s idle ${idle.rssMiB} MiB, peak ${Math.round(server.peakRssKiB() / 1024)} MiB`);
    console.log(`RSS spread over the second half of the run: ${spread} MiB (${half.length} samples)`);
    console.log(`OpenCV wasm heap at start ${samples[0]!.heapMiB} MiB, at end ${idle.heapMiB} MiB; workers retired ${idle.retired}, crashed ${idle.crashed}`);
    console.log(`${done} requests after warm-up; 5xx other than 503/504, or no answer: ${faults}; server crashes: ${idle.crashed}`);
    if (faults > 0) process.exitCode = 1;
  } finally {
    const { code } = await server.stop('SIGTERM');
    console.log(`server stopped with exit code ${code}`);
  }
}

await main();
