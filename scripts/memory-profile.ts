/**
 * Resident memory of a real server process, engine by engine, idle and under a short load: the
 * numbers behind the README's "Raspberry Pi / small boards" profile.
 *
 *   npm run build && npx tsx scripts/memory-profile.ts [--profiles small,pi-defaults] [--requests 300]
 *                                                      [--concurrency 4] [--no-dist]
 *
 * Each profile is a set of settings (below). For each, the server is started on 127.0.0.1 with a
 * models directory that grows one engine at a time (no models; the Haar cascades; + MobileNetV2;
 * + YOLOX-nano; + ESPCN = every model), and RSS is read from /proc once it is ready and idle. The
 * last process then gets one request per route, a bounded load of every non-face route, the text
 * routes (/ocr, /alpr), the first face requests (the face worker starts), and a load of everything;
 * RSS after each, and the peak
 * (VmHWM). CVSERVE_* variables of the calling shell override the profile's. Loopback only; every
 * loop is bounded by its request count.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { usPlateIn } from '../tests/helpers/plates.js';
import { runLoad, type LoadRequest } from './lib/load.js';
import { startServerProcess, type ServerProcess } from './lib/server-process.js';

const root = path.resolve(import.meta.dirname, '..');

const { values } = parseArgs({
  options: {
    profiles: { type: 'string', default: 'small,pi-defaults' },
    requests: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '4' },
    'per-route': { type: 'string', default: '20' },
    /** Skip the engine-by-engine idle processes: only the one with every model. */
    'full-only': { type: 'boolean', default: false },
    'no-dist': { type: 'boolean', default: false },
    images: { type: 'string', default: path.resolve(root, '../shared/images') },
    models: { type: 'string', default: process.env.CVSERVE_MODELS_DIR ?? path.resolve(root, '../shared/models') },
  },
});

/**
 * The small-board profile (README "Raspberry Pi / small boards"): one worker per engine, faces
 * started on the first face request, heaps and image sizes capped so one large photo cannot push
 * the process past a small board's memory.
 */
export const SMALL_BOARD_PROFILE: Record<string, string> = {
  CVSERVE_OPENCV_WORKERS: '1',
  // A held task is a copy of its image: none waits on the worker.
  CVSERVE_OPENCV_PREFETCH: '0',
  CVSERVE_ONNX_WORKERS: '1',
  CVSERVE_ONNX_THREADS: '2',
  CVSERVE_ONNX_BATCH_MAX: '1',
  CVSERVE_UPSCALE_BATCH: '1',
  CVSERVE_FACE_WORKERS: '1',
  CVSERVE_FACE_PRELOAD: 'off',
  CVSERVE_WORKER_MAX_HEAP_MB: '160',
  CVSERVE_FACE_MAX_HEAP_MB: '512',
  CVSERVE_FACE_MAX_SIDE: '1280',
  CVSERVE_MAX_PIXELS: '16000000',
  // Decodes together within 256 MiB: four 16 MP photos at once; a row over about 5 M pixels is refused.
  CVSERVE_DECODE_MEMORY_BYTES: '268435456',
  // A 3-megapixel photo's Haar search as calls of at most 2 M pyramid pixels: the OpenCV heap ends near 154 MiB, not 344 (same answer).
  CVSERVE_DETECT_PYRAMID_PIXELS_PER_CALL: '2000000',
  CVSERVE_OCR_PRELOAD: 'off',
  // ONNX Runtime frees each run's buffers (with the mmap threshold below they leave the process).
  CVSERVE_ONNX_MEMORY_ARENA: 'off',
  MALLOC_ARENA_MAX: '2',
  // glibc: buffers over 128 KiB (decoded photos) get their own mapping, returned to the system when
  // freed, instead of the main heap that grows with fragmentation (measured: 174 → 49 MiB [heap]).
  MALLOC_MMAP_THRESHOLD_: '131072',
};

const PROFILES: Record<string, Record<string, string>> = {
  small: SMALL_BOARD_PROFILE,
  // What a 4-core board (Raspberry Pi 4/5) gets with no settings: a worker and a thread per core.
  'pi-defaults': { CVSERVE_OPENCV_WORKERS: '4', CVSERVE_ONNX_THREADS: '4', MALLOC_ARENA_MAX: '2' },
  // This machine's defaults (cores from os.availableParallelism()).
  defaults: { MALLOC_ARENA_MAX: '2' },
};

/** Each stage adds the files of one engine to the models directory. */
const STAGES: { name: string; files: string[] }[] = [
  { name: 'no models (HTTP, OpenCV workers)', files: [] },
  { name: '+ Haar cascades (/detect, /catfacedetection)', files: ['haarcascade_frontalface_alt.xml', 'haarcascade_frontalcatface_extended.xml'] },
  { name: '+ MobileNetV2 (/predict)', files: ['mobilenetv2-12-int8.onnx', 'imagenet_classes.txt'] },
  { name: '+ YOLOX-nano (/catdetection)', files: ['yolox_nano.onnx', 'coco_classes.txt'] },
  { name: '+ ESPCN (/upscale): every model', files: ['espcn-x3.onnx'] },
];

const photo = (name: string) => readFileSync(path.join(values.images, name));
const photos = { face: photo('test_face_processing.jpg'), cat: photo('cat_small.jpg'), car: photo('car.jpg') };
const jpeg = { 'Content-Type': 'image/jpeg' };
const mib = (kib: number) => Math.round(kib / 1024);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The photo as a DeepStack client sends it: multipart, field `image`. */
async function multipart(body: Buffer): Promise<{ headers: Record<string, string>; body: Buffer }> {
  const form = new FormData();
  form.set('image', new Blob([new Uint8Array(body)], { type: 'image/jpeg' }), 'photo.jpg');
  const req = new Request('http://127.0.0.1/', { method: 'POST', body: form });
  return { headers: { 'Content-Type': req.headers.get('content-type')! }, body: Buffer.from(await req.arrayBuffer()) };
}
const deepstackCar = await multipart(photos.car);

const cycle = [photos.face, photos.cat, photos.car];
/** One entry per non-face image route, each cycling through the photos. */
const nonFaceRoutes: [string, (i: number) => LoadRequest][] = [
  ['/canny', (i) => ({ path: '/canny?format=jpeg', headers: jpeg, body: cycle[i % 3] })],
  ['/detect', (i) => ({ path: '/detect', headers: jpeg, body: cycle[i % 3] })],
  ['/catfacedetection', (i) => ({ path: '/catfacedetection', headers: jpeg, body: cycle[i % 3] })],
  ['/predict', (i) => ({ path: '/predict', headers: jpeg, body: cycle[i % 3] })],
  ['/catdetection', (i) => ({ path: '/catdetection', headers: jpeg, body: cycle[i % 3] })],
  ['/v1/vision/detection', () => ({ path: '/v1/vision/detection', ...deepstackCar })],
  // The 640x482 photo: its x3 output is 3.8 MP.
  ['/upscale', () => ({ path: '/upscale?format=jpeg', headers: jpeg, body: photos.face })],
];
const nonFaceMix = nonFaceRoutes.map(([, r]) => r);
// Plates and text: a US plate rendered (DejaVu fonts) into data/coffee.jpg, as scripts/image-checks.ts does.
const platePhoto = await usPlateIn(readFileSync(path.join(root, 'data/coffee.jpg')));
const textMix: ((i: number) => LoadRequest)[] = [
  () => ({ path: '/ocr', headers: jpeg, body: platePhoto }),
  () => ({ path: '/alpr?region=us', headers: jpeg, body: platePhoto }),
  (i) => ({ path: '/ocr', headers: jpeg, body: cycle[i % 3] }),
];
const faceMix: ((i: number) => LoadRequest)[] = [
  () => ({ path: '/facedetection', headers: jpeg, body: photos.face }),
  () => ({ path: '/facerecognition', headers: jpeg, body: photos.face }),
];

/** Waits until /readyz stops changing (models present are loaded, absent ones reported missing). */
async function settle(server: ServerProcess): Promise<void> {
  let last = '';
  let stableSince = Date.now();
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${server.url}/readyz`);
    const body = await res.text();
    if (res.ok) break;
    if (body !== last) {
      last = body;
      stableSince = Date.now();
    } else if (!/starting|loading|checking/i.test(body) && Date.now() - stableSince > 3000) break;
    await sleep(200);
  }
  await sleep(1500); // let startup garbage be collected and threads go idle
}

async function load(server: ServerProcess, mix: ((i: number) => LoadRequest)[], total: number): Promise<string> {
  const report = await runLoad({
    baseUrl: server.url,
    total,
    concurrency: Number(values.concurrency),
    request: (i) => mix[i % mix.length]!(Math.floor(i / mix.length)),
  });
  const bad = report.outcomes.filter((o) => o.status !== 200);
  return `${report.ok}/${total} ok` + (bad.length ? ` (non-200: ${[...new Set(bad.map((o) => o.status))].join(',')})` : '');
}

interface Row {
  profile: string;
  stage: string;
  rss: number;
  peak: number;
  note?: string;
}

async function measureProfile(profile: string, settings: Record<string, string>, rows: Row[]): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cvserve-mem-'));
  const modelsDir = path.join(dir, 'models');
  const dataDir = path.join(dir, 'data');
  mkdirSync(modelsDir);
  mkdirSync(dataDir);
  try {
    for (const [index, stage] of STAGES.entries()) {
      for (const file of stage.files) copyFileSync(path.join(values.models, file), path.join(modelsDir, file));
      if (values['full-only'] && index < STAGES.length - 1) continue;
      const server = await startServerProcess({
        command: values['no-dist'] ? ['node', '--import', 'tsx', 'src/server.ts'] : ['node', 'dist/src/server.js'],
        cwd: root,
        env: {
          PATH: process.env.PATH,
          NODE_ENV: 'production',
          HOST: '127.0.0.1',
          PORT: '0',
          LOG_LEVEL: 'info',
          CVSERVE_MODELS_DIR: modelsDir,
          CVSERVE_MODELS_FETCH: 'off',
          CVSERVE_DATA_DIR: dataDir,
          ...settings,
          // CVSERVE_* variables of the calling shell win over the profile (to try a variation).
          ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CVSERVE_') && k !== 'CVSERVE_MODELS_DIR')),
        },
        startTimeoutMs: 120_000,
      });
      try {
        await settle(server);
        const row = (stage: string, note?: string) => {
          rows.push({ profile, stage, rss: mib(server.rssKiB()), peak: mib(server.peakRssKiB()), note });
          const r = rows.at(-1)!;
          console.log(`${profile.padEnd(12)} ${stage.padEnd(52)} RSS ${String(r.rss).padStart(5)} MiB  peak ${String(r.peak).padStart(5)} MiB${note ? `  ${note}` : ''}`);
        };
        row(`idle, ${stage.name}`);
        if (index < STAGES.length - 1) continue;
        // The full set: the first request of each route (its engine's buffers grow), loads, then faces.
        const perRoute = Number(values['per-route']);
        for (const [route, request] of nonFaceRoutes) {
          const one = await load(server, [request], 1);
          await sleep(500);
          row(`after the first ${route}`, one);
          const busy = await load(server, [request], perRoute);
          row(`after ${perRoute} x ${route}, concurrency ${values.concurrency}`, busy);
        }
        const n = Number(values.requests);
        const busy = await load(server, nonFaceMix, n);
        row(`after ${n} non-face requests, concurrency ${values.concurrency}`, busy);
        await sleep(5000);
        row('idle 5 s later');
        // Text (/ocr, /alpr): loaded on the first such request when CVSERVE_OCR_PRELOAD=off.
        const firstText = await load(server, textMix.slice(0, 1), 1);
        await sleep(500);
        row('+ text (first /ocr)', firstText);
        const text = await load(server, textMix, perRoute);
        row(`after ${perRoute} x /ocr and /alpr, concurrency ${values.concurrency}`, text);
        // Register one user so /facerecognition has a gallery to match against.
        const form = new FormData();
        form.set('userid', 'alice');
        form.set('image', new Blob([new Uint8Array(photos.face)], { type: 'image/jpeg' }), 'face.jpg');
        const reg = await fetch(`${server.url}/v1/vision/face/register`, { method: 'POST', body: form });
        const firstFaces = await load(server, faceMix, faceMix.length);
        await sleep(1000);
        row('+ faces (worker started, one detect + recognize)', `register ${reg.status}, ${firstFaces}`);
        const all = await load(server, [...nonFaceMix, ...textMix, ...faceMix], n);
        row(`after ${n} requests of every route incl. faces`, all);
      } finally {
        await server.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
for (const name of values.profiles.split(',')) {
  const settings = PROFILES[name];
  if (!settings) throw new Error(`unknown profile ${name} (${Object.keys(PROFILES).join(', ')})`);
  console.log(`# ${name}: ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  await measureProfile(name, settings, rows);
}
