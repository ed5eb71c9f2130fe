/**
 * Face kernels, no HTTP: the face engine (one worker thread) and the gallery, as register and
 * recognize use them, with one face and with the 17 faces of test_face_processing.jpg.
 *
 *   npm run bench:faces -- [--quick] [--json] [--postgres URL] [--no-kernels] [--no-http] [--dist]
 *
 * Kernel rows (in this process): model load (a cold worker), SSD detection, describe (detect +
 * landmarks + descriptors), register (describe + gallery add), recognize (describe + snapshot +
 * nearest neighbour), nearest neighbour alone over a large gallery, gallery operations; then the
 * wasm heap over 50 calls and this process's peak RSS (the worker thread lives in it).
 *
 * HTTP rows (a real server process on 127.0.0.1, SQLite gallery in a temp dir, or the database of
 * --postgres; one request at a time): register through /v1/vision/face/register (one face; a photo
 * of 17 faces; 17 people one call each), recognize through /facerecognition and
 * /v1/vision/face/recognize (one face; 17 faces against 17 users), each with the server's peak RSS
 * (all its threads) while the row ran. Wall times on a shared machine are noisy: compare rows of
 * one run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import { startReplica, type ServerProcess } from '../scripts/lib/server-process.js';
import { sampleRss, treeCpuMs } from './targets.js';
import { FaceEngine } from '../src/engines/face/engine.js';
import type { FaceGallery } from '../src/faces/gallery.js';
import { matchFace } from '../src/faces/match.js';
import { PostgresGallery } from '../src/faces/postgres-gallery.js';
import { GallerySnapshots } from '../src/faces/snapshots.js';
import { SqliteGallery } from '../src/faces/sqlite-gallery.js';
import type { RawImage } from '../src/image/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const images = path.resolve(here, '..', '..', 'shared', 'images');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const json = args.includes('--json');
const pgUrl = args.includes('--postgres') ? args[args.indexOf('--postgres') + 1] : undefined;
const withKernels = !args.includes('--no-kernels');
const withHttp = !args.includes('--no-http');
const repoRoot = path.resolve(here, '..');
const modelsDir = process.env.CVSERVE_MODELS_DIR ?? path.resolve(here, '..', '..', 'shared', 'models');
const budgetMs = quick ? 1500 : 6000;
const minIterations = quick ? 3 : 8;

let peakRss = process.memoryUsage.rss();
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);

interface Row {
  ms: number;
  iterations: number;
  what: string;
}
const rows: Record<string, Row> = {};

async function time(name: string, what: string, fn: () => Promise<unknown>): Promise<void> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minIterations || performance.now() - start < budgetMs) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
    if (times.length >= 100) break;
  }
  times.sort((a, b) => a - b);
  rows[name] = { ms: times[Math.floor(times.length / 2)]!, iterations: times.length, what };
  if (!json) console.log(`${name.padEnd(26)} ${rows[name].ms.toFixed(1).padStart(8)} ms  (n=${times.length})  ${what}`);
}

async function rgb(pipeline: Sharp): Promise<RawImage> {
  const { data, info } = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: 3 };
}

const mb = (bytes: number) => Math.round(bytes / 1048576);

/** The kernel rows: the engine and the gallery in this process. */
async function kernelRows(): Promise<Record<string, unknown>> {
  const rssBefore = process.memoryUsage.rss();
  const photo = await rgb(sharp(path.join(images, 'test_face_processing.jpg')));
  // One person: the crop around the face at (185,177)-(215,218), padded by its size (one face in it).
  const onePerson = await rgb(sharp(path.join(images, 'test_face_processing.jpg')).extract({ left: 155, top: 136, width: 90, height: 123 }));
  const hd = await rgb(sharp(path.join(images, 'car.jpg')).resize(1920, 1080, { fit: 'fill' }));

  const engine = new FaceEngine({ workers: 1, maxQueue: 4 });
  const t0 = performance.now();
  const [load] = await engine.loadTimes();
  const coldStartMs = performance.now() - t0;
  const rssLoaded = process.memoryUsage.rss();
  if (!json) console.log(`${'load (cold worker)'.padEnd(26)} ${coldStartMs.toFixed(1).padStart(8)} ms  (models ${load!.loadMs.toFixed(0)} ms in the worker, warm-up included; RSS +${mb(rssLoaded - rssBefore)} MB)`);

  const seventeen = await engine.describe(photo);
  const one = await engine.describe(onePerson);
  if (seventeen.length !== 17 || one.length !== 1) throw new Error(`expected 17 and 1 faces, got ${seventeen.length} and ${one.length}`);

  await time('detect 640x482', 'SSD only, 17 faces', () => engine.detect(photo));
  await time('describe 1 face', `${onePerson.width}x${onePerson.height} crop: detect + landmarks + descriptor`, () => engine.describe(onePerson));
  await time('describe 17 faces', '640x482: detect + 17 × (landmarks + descriptor)', () => engine.describe(photo));
  const perFace = (rows['describe 17 faces']!.ms - rows['detect 640x482']!.ms) / 17;
  if (!json) console.log(`${'  per face'.padEnd(26)} ${perFace.toFixed(1).padStart(8)} ms  (describe 17 − detect) / 17`);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-bench-faces-'));
  const galleries: [string, FaceGallery][] = [['sqlite', new SqliteGallery({ file: path.join(dir, 'faces.sqlite'), limits: { maxUsers: 100_000, maxDescriptorsPerUser: 100 } })]];
  if (pgUrl) galleries.push(['postgres', await PostgresGallery.open({ url: pgUrl, schema: `cvserve_bench_${process.pid}`, limits: { maxUsers: 100_000, maxDescriptorsPerUser: 100 } })]);

  for (const [backend, gallery] of galleries) {
    const model = engine.model;
    let n = 0;
    await time(`register 1 face (${backend})`, 'describe + add one photo to a user', async () => {
      const faces = await engine.describe(onePerson);
      await gallery.add('bench-one', [{ descriptor: faces[0]!.descriptor, imageSha256: (n++).toString(16).padStart(64, '0') }], model);
      if (n % 50 === 0) await gallery.delete('bench-one');
    });
    await gallery.delete('bench-one');
    await time(`register 17 faces (${backend})`, 'describe the photo + add 17 users', async () => {
      const faces = await engine.describe(photo);
      const round = n++;
      for (const [i, f] of faces.entries()) await gallery.add(`bench-${i}`, [{ descriptor: f.descriptor, imageSha256: round.toString(16).padStart(64, '0') }], model);
      for (let i = 0; i < 17; i++) await gallery.delete(`bench-${i}`);
    });
    for (const [i, f] of seventeen.entries()) await gallery.add(`person-${i}`, [{ descriptor: f.descriptor, imageSha256: 'f'.repeat(64) }], model);
    const snapshots = new GallerySnapshots(gallery);
    await time(`recognize 1 face (${backend})`, 'describe + snapshot (cached) + nearest of 17 users', async () => {
      const faces = await engine.describe(onePerson);
      const snap = await snapshots.current(model);
      for (const f of faces) matchFace(snap, f.descriptor);
    });
    await time(`recognize 17 faces (${backend})`, 'describe + snapshot (cached) + 17 nearest of 17 users', async () => {
      const faces = await engine.describe(photo);
      const snap = await snapshots.current(model);
      const named = faces.map((f) => matchFace(snap, f.descriptor)).filter((m) => m.userid).length;
      if (named !== 17) throw new Error(`recognized ${named} of 17`);
    });
    await time(`gallery add+delete (${backend})`, 'one descriptor in, user out (two transactions)', async () => {
      await gallery.add('bench-x', [{ descriptor: one[0]!.descriptor, imageSha256: 'e'.repeat(64) }], model);
      await gallery.delete('bench-x');
    });
    await time(`snapshot reload (${backend})`, '17 descriptors read after a change', () => gallery.snapshot(model));
    await time(`generation check (${backend})`, 'what every recognize pays when nothing changed', () => gallery.generation());
    for (let i = 0; i < 17; i++) await gallery.delete(`person-${i}`);
  }

  // Nearest neighbour alone, over a gallery of 1000 users × 5 photos (the default user limit).
  const big = { model: engine.model, generation: 0, userids: Array.from({ length: 5000 }, (_, i) => `u${i % 1000}`), vectors: new Float32Array(5000 * 128).map(() => Math.random() - 0.5) };
  await time('nearest of 5000 (1 face)', '1000 users × 5 photos, on the calling thread', async () => void matchFace(big, seventeen[0]!.descriptor));

  // The wasm heap: it grows to what the largest image needs and stays there.
  const heap = () => engine.stats()[0]!.heapBytes;
  const heapStart = heap();
  for (let i = 0; i < 50; i++) await engine.describe(photo);
  const heapAfter50 = heap();
  await engine.describe(hd);
  const heapAfterHd = heap();
  for (let i = 0; i < 10; i++) await engine.describe(photo);
  const heapEnd = heap();
  clearInterval(sampler);
  const report = {
    loadMs: { coldStart: coldStartMs, inWorker: load!.loadMs },
    rows,
    perFaceMs: perFace,
    heapMb: { afterLoad: mb(load!.heapBytes), beforeLoop: mb(heapStart), after50Describes640: mb(heapAfter50), after1920x1080: mb(heapAfterHd), after10More640: mb(heapEnd) },
    rssMb: { before: mb(rssBefore), afterLoad: mb(rssLoaded), peak: mb(peakRss), end: mb(process.memoryUsage.rss()) },
  };
  if (!json) {
    console.log(`wasm heap (MB): after load ${report.heapMb.afterLoad}, before the loop ${report.heapMb.beforeLoop}, after 50 × 640x482 ${report.heapMb.after50Describes640}, after one 1920x1080 ${report.heapMb.after1920x1080}, after 10 more 640x482 ${report.heapMb.after10More640}`);
    console.log(`process RSS (MB): before ${report.rssMb.before}, models loaded ${report.rssMb.afterLoad}, peak ${report.rssMb.peak}, end ${report.rssMb.end}`);
  }
  await Promise.all(galleries.map(([, g]) => g.close()));
  if (pgUrl) {
    const pg = await import('pg');
    const c = new pg.default.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS cvserve_bench_${process.pid} CASCADE`);
    await c.end();
  }
  rmSync(dir, { recursive: true, force: true });
  await engine.close();
  return report;
}


interface HttpRow {
  /** Median and 90th percentile latency of one request (ms), client side. */
  p50: number;
  p90: number;
  iterations: number;
  /** Server CPU (all threads) per iteration, ms. */
  cpuMs: number;
  /** Highest RSS of the server process (all threads) while the row ran, MB. */
  peakRssMb: number;
  what: string;
}

/** A multipart body as DeepStack clients send it. */
function form(fields: Record<string, string>, files: [string, Buffer][]): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  for (const [name, bytes] of files) f.append(name, new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), `${name}.jpg`);
  return f;
}

async function post(url: string, body: FormData | Buffer): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', body: Buffer.isBuffer(body) ? new Uint8Array(body) : body, headers: Buffer.isBuffer(body) ? { 'content-type': 'image/jpeg' } : undefined });
  const answer = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${JSON.stringify(answer).slice(0, 200)}`);
  return answer;
}

/**
 * The HTTP rows: a server process with one face worker, requests one at a time (what one client
 * sees; concurrency only queues on the single worker), each row with the server's peak RSS.
 */
async function httpRows(): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-bench-faces-http-'));
  const databaseUrl = pgUrl ? await freshDatabase(pgUrl) : undefined;
  const server: ServerProcess = await startReplica({
    cwd: repoRoot,
    modelsDir,
    dist: args.includes('--dist'),
    startTimeoutMs: 600_000,
    env: {
      CVSERVE_DATA_DIR: dataDir,
      ...(databaseUrl && { CVSERVE_DATABASE_URL: databaseUrl.url }),
      CVSERVE_FACE_MAX_USERS: '100000',
      CVSERVE_REQUEST_TIMEOUT_MS: '600000',
    },
  });
  const base = server.url;
  const rows: Record<string, HttpRow> = {};
  const rss = () => Math.round(server.rssKiB() / 1024);
  try {
    const group = readFileSync(path.join(images, 'test_face_processing.jpg'));
    const rssIdle = rss();
    // The first face request starts the worker and loads the models.
    const t0 = performance.now();
    const found = (await post(`${base}/facedetection`, group)).result as { box: [number, number, number, number] }[];
    const coldMs = performance.now() - t0;
    const rssLoaded = rss();
    if (found.length !== 17) throw new Error(`expected 17 faces, got ${found.length}`);
    // A portrait per person: the face box grown by 3/4 of its size on every side (one face the largest in it).
    const crops = await Promise.all(
      found.map(({ box: [x0, y0, x1, y1] }) => {
        const mw = Math.round((x1 - x0) * 0.75);
        const mh = Math.round((y1 - y0) * 0.75);
        const left = Math.max(0, x0 - mw);
        const top = Math.max(0, y0 - mh);
        return sharp(group).extract({ left, top, width: Math.min(640, x1 + mw) - left, height: Math.min(482, y1 + mh) - top }).jpeg({ quality: 92 }).toBuffer();
      }),
    );
    const flipped = await sharp(group).flop().resize(960).jpeg({ quality: 90 }).toBuffer();
    if (!json) console.log(`\nHTTP, one request at a time (server ${base}, ${databaseUrl ? 'PostgreSQL' : 'SQLite'} gallery; first face request ${coldMs.toFixed(0)} ms: worker start + models; RSS idle ${rssIdle} MB, after ${rssLoaded} MB)`);

    const time = async (name: string, what: string, fn: (i: number) => Promise<unknown>, setup?: () => Promise<void>): Promise<void> => {
      await setup?.();
      await fn(-1);
      const sampler = sampleRss(server.pid, 50);
      const cpu0 = treeCpuMs(server.pid);
      const times: number[] = [];
      const start = performance.now();
      while (times.length < minIterations || performance.now() - start < budgetMs) {
        await setup?.();
        const t = performance.now();
        await fn(times.length);
        times.push(performance.now() - t);
        if (times.length >= 50) break;
      }
      const cpuMs = (treeCpuMs(server.pid) - cpu0) / times.length;
      const peakRssMb = Math.round(sampler.stop());
      times.sort((a, b) => a - b);
      const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
      rows[name] = { p50: at(0.5), p90: at(0.9), iterations: times.length, cpuMs, peakRssMb, what };
      if (!json) console.log(`${name.padEnd(34)} p50 ${at(0.5).toFixed(0).padStart(6)} ms  p90 ${at(0.9).toFixed(0).padStart(6)} ms  cpu ${cpuMs.toFixed(0).padStart(5)} ms  peak RSS ${String(peakRssMb).padStart(4)} MB  (n=${times.length})  ${what}`);
    };
    const register = (userid: string, files: [string, Buffer][]) => post(`${base}/v1/vision/face/register`, form({ userid }, files));
    const clear = async () => {
      const users = ((await post(`${base}/v1/vision/face/list`, form({}, []))).faces as string[]) ?? [];
      for (const u of users) await post(`${base}/v1/vision/face/delete`, form({ userid: u }, []));
    };

    let n = 0;
    await time('register 1 face', 'DeepStack register: one portrait, a new user each call', () => register(`bench-${n++}`, [['image', crops[0]!]]));
    await time('register 17-face photo', 'DeepStack register: the group photo (17 described, the largest stored)', () => register(`bench-${n++}`, [['image', group]]));
    await clear();
    await time('register 17 people', '17 DeepStack register calls, one portrait each (time for all 17)', async () => {
      for (let i = 0; i < 17; i++) await register(`person-${i}`, [['image', crops[i]!]]);
    }, clear);
    const check = (answer: Record<string, unknown>, key: 'result' | 'predictions', known: number) => {
      const faces = answer[key] as { userid: string }[];
      const named = faces.filter((f) => f.userid !== 'unknown').length;
      if (named !== known) throw new Error(`recognized ${named} faces, expected ${known}`);
    };
    await time('recognize 1 face', '/facerecognition: one portrait, 17 users', async () => check(await post(`${base}/facerecognition`, crops[3]!), 'result', 1));
    await time('recognize 17 faces', '/facerecognition: flipped group photo 960x723, 17 users', async () => check(await post(`${base}/facerecognition`, flipped), 'result', 17));
    await time('recognize 17 faces (DeepStack)', '/v1/vision/face/recognize: the same photo', async () =>
      check(await post(`${base}/v1/vision/face/recognize`, form({}, [['image', flipped]])), 'predictions', 17),
    );
    await time('detect 17 faces', '/facedetection: the group photo (SSD only)', () => post(`${base}/facedetection`, group));
    const peak = Math.round(server.peakRssKiB() / 1024);
    if (!json) console.log(`server RSS (MB): idle ${rssIdle}, after the first face request ${rssLoaded}, peak (VmHWM) ${peak}, end ${rss()}`);
    return { coldMs, rssMb: { idle: rssIdle, loaded: rssLoaded, peak, end: rss() }, rows, backend: databaseUrl ? 'postgres' : 'sqlite' };
  } finally {
    await server.stop();
    await databaseUrl?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A throwaway database on the --postgres server, so the server process sees only a URL. */
async function freshDatabase(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const pg = await import('pg');
  const name = `cvserve_bench_http_${process.pid}`;
  const admin = async (sql: string) => {
    const c = new pg.default.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

const report: Record<string, unknown> = {};
if (withKernels) report.kernels = await kernelRows();
clearInterval(sampler);
if (withHttp) report.http = await httpRows();
if (json) console.log(JSON.stringify(report, null, 2));
