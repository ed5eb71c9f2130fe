/**
 * One request per route of the README's route tables (native and DeepStack), sent to two running
 * servers: a reference (amd64) and a candidate (the arm64 image under emulation). Each answer of
 * the candidate is compared with the reference's on the same photo, within the tolerances the
 * parity tests use: boxes matched one-to-one with IoU >= 0.9 and the same labels, scores within
 * 0.01, /predict's probabilities within 0.0015, Canny edge maps with edge IoU >= 0.99; upscaled
 * images (no parity test compares two runs of them) within 40 dB luma PSNR.
 *
 *   npx tsx scripts/arm64-compare.ts --reference http://127.0.0.1:8080 --candidate http://127.0.0.1:8081
 *
 * Prints one line per route (ok/FAIL, the largest difference, the candidate's and the reference's
 * time) and exits 1 when any route differs. Both servers get the same face-gallery calls
 * (register, recognize, list, match, delete of one user), so both galleries must start without
 * that user. Loopback only.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Agent, fetch, FormData } from 'undici';
import { usPlateIn } from '../tests/helpers/plates.js';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    reference: { type: 'string' },
    candidate: { type: 'string' },
    images: { type: 'string', default: path.resolve(root, '../shared/images') },
    'timeout-ms': { type: 'string', default: '600000' },
  },
});
const loopback = /^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/;
for (const url of [values.reference, values.candidate]) {
  if (!url || !loopback.test(url)) throw new Error(`--reference and --candidate must be loopback URLs, not ${url}`);
}

const photo = (name: string) => readFileSync(path.join(values.images, name));
const face = photo('test_face_processing.jpg');
const cat = photo('cat_small.jpg');
const car = photo('car.jpg');
// A 200x150 crop for the super-resolution routes: one model tile, so emulation stays bearable.
const faceCrop = await sharp(face).extract({ left: 200, top: 60, width: 200, height: 150 }).jpeg({ quality: 95 }).toBuffer();
// Plates and text: a US plate rendered here (DejaVu fonts), placed into a sample photo, as scripts/image-checks.ts does.
const platePhoto = await usPlateIn(readFileSync(path.join(root, 'data/coffee.jpg')));
const USER = 'arm64-compare';

interface Answer {
  status: number;
  type: string;
  body: Buffer;
  ms: number;
}

interface Check {
  route: string;
  method?: 'GET' | 'POST';
  /** Raw body with its content type, or multipart fields. */
  raw?: { type: string; body: Buffer };
  form?: Record<string, Buffer | string>;
  compare: (reference: Answer, candidate: Answer) => Promise<Difference>;
}

/** What differs (problems; empty when within tolerance) and the largest numeric difference seen. */
interface Difference {
  problems: string[];
  worst: string;
}

// Emulated first requests (the face worker starting under qemu) take minutes: fetch's default
// 300 s wait for the answer's headers would cut them off.
const dispatcher = new Agent({ headersTimeout: Number(values['timeout-ms']), bodyTimeout: Number(values['timeout-ms']) });

async function send(base: string, check: Check): Promise<Answer> {
  let body: Uint8Array | FormData | undefined;
  const headers: Record<string, string> = {};
  if (check.raw) {
    body = new Uint8Array(check.raw.body);
    headers['Content-Type'] = check.raw.type;
  } else if (check.form) {
    const form = new FormData();
    for (const [k, v] of Object.entries(check.form)) {
      if (typeof v === 'string') form.set(k, v);
      else form.set(k, new Blob([new Uint8Array(v)], { type: 'image/jpeg' }), `${k}.jpg`);
    }
    body = form;
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Number(values['timeout-ms']));
  const t0 = performance.now();
  try {
    const res = await fetch(`${base}${check.route}`, { method: check.method ?? (body ? 'POST' : 'GET'), headers, body, signal: controller.signal, dispatcher });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: bytes, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

// --- comparisons

type Box = [number, number, number, number];
interface Detection {
  name: string;
  score: number;
  box: Box;
}

function boxIoU(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const area = (r: Box) => (r[2] - r[0]) * (r[3] - r[1]);
  return inter / (area(a) + area(b) - inter);
}

/** An array element that is a detection: a native `box` or DeepStack corners. */
function asDetection(o: unknown): Detection | undefined {
  if (!o || typeof o !== 'object') return undefined;
  const r = o as Record<string, unknown>;
  const box = Array.isArray(r.box) ? (r.box as Box) : typeof r.x_min === 'number' ? ([r.x_min, r.y_min, r.x_max, r.y_max] as Box) : undefined;
  if (!box) return undefined;
  const name = String(r.label ?? r.userid ?? r.plate ?? r.text ?? '');
  const score = Number(r.score ?? r.confidence ?? 0);
  return { name, score, box };
}

/** Same count; greedy one-to-one matching by IoU; each pair IoU >= 0.9, same label/user, score within tol. */
function compareDetections(ref: Detection[], got: Detection[], scoreTol: number, where: string, out: Difference, worst: { iou: number; score: number }): void {
  if (ref.length !== got.length) {
    out.problems.push(`${where}: ${got.length} detections, reference ${ref.length}`);
    return;
  }
  const pairs: [number, number, number][] = [];
  ref.forEach((r, i) => got.forEach((g, j) => pairs.push([boxIoU(r.box, g.box), i, j])));
  pairs.sort((a, b) => b[0] - a[0]);
  const usedR = new Set<number>();
  const usedG = new Set<number>();
  for (const [v, i, j] of pairs) {
    if (usedR.has(i) || usedG.has(j)) continue;
    usedR.add(i);
    usedG.add(j);
    const r = ref[i]!;
    const g = got[j]!;
    worst.iou = Math.min(worst.iou, v);
    worst.score = Math.max(worst.score, Math.abs(r.score - g.score));
    if (v < 0.9) out.problems.push(`${where}: box ${JSON.stringify(r.box)} matched ${JSON.stringify(g.box)} with IoU ${v.toFixed(3)}`);
    if (r.name !== g.name) out.problems.push(`${where}: ${JSON.stringify(r.name)} became ${JSON.stringify(g.name)}`);
    if (Math.abs(r.score - g.score) > scoreTol) out.problems.push(`${where}: score ${r.score} became ${g.score}`);
  }
}

const TIMING = /Ms$|^duration$/;

/** Deep comparison of two JSON answers: detection arrays by matching, other numbers within tol, the rest equal. */
function compareJson(scoreTol: number, images?: (ref: Buffer, got: Buffer, where: string) => Promise<Difference>) {
  return async (ref: Answer, got: Answer): Promise<Difference> => {
    const out: Difference = { problems: [], worst: '' };
    if (ref.status !== got.status) return { problems: [`status ${got.status}, reference ${ref.status}: ${got.body.toString().slice(0, 200)}`], worst: '' };
    const worst = { iou: 1, score: 0, number: 0 };
    const walk = async (a: unknown, b: unknown, where: string): Promise<void> => {
      if (Array.isArray(a) && Array.isArray(b)) {
        const da = a.map(asDetection);
        const db = b.map(asDetection);
        if (a.length > 0 && da.every(Boolean) && db.every(Boolean)) return compareDetections(da as Detection[], db as Detection[], scoreTol, where, out, worst);
        if (a.length !== b.length) return void out.problems.push(`${where}: length ${b.length}, reference ${a.length}`);
        for (let i = 0; i < a.length; i++) await walk(a[i], b[i], `${where}[${i}]`);
        return;
      }
      if (a && b && typeof a === 'object' && typeof b === 'object') {
        const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
        for (const k of keys) {
          if (TIMING.test(k)) continue;
          const va = (a as Record<string, unknown>)[k];
          const vb = (b as Record<string, unknown>)[k];
          if (images && typeof va === 'string' && typeof vb === 'string' && va.length > 1000) {
            const d = await images(Buffer.from(va, 'base64'), Buffer.from(vb, 'base64'), `${where}.${k}`);
            out.problems.push(...d.problems);
            out.worst = d.worst;
            continue;
          }
          await walk(va, vb, `${where}.${k}`);
        }
        return;
      }
      if (typeof a === 'number' && typeof b === 'number') {
        worst.number = Math.max(worst.number, Math.abs(a - b));
        if (Math.abs(a - b) > scoreTol) out.problems.push(`${where}: ${b}, reference ${a}`);
        return;
      }
      if (a !== b) out.problems.push(`${where}: ${JSON.stringify(b)}, reference ${JSON.stringify(a)}`);
    };
    await walk(JSON.parse(ref.body.toString()), JSON.parse(got.body.toString()), '$');
    const parts = [];
    if (worst.iou < 1) parts.push(`min IoU ${worst.iou.toFixed(3)}`);
    if (worst.score > 0) parts.push(`max score diff ${worst.score.toFixed(4)}`);
    if (worst.number > 0) parts.push(`max number diff ${worst.number.toFixed(4)}`);
    if (out.worst) parts.push(out.worst);
    out.worst = parts.join(', ') || 'identical';
    return out;
  };
}

async function gray(bytes: Buffer) {
  const { data, info } = await sharp(bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Canny edge maps: the parity tests' edge IoU >= 0.99. */
async function compareEdges(ref: Buffer, got: Buffer, where = 'edges'): Promise<Difference> {
  const [a, b] = await Promise.all([gray(ref), gray(got)]);
  if (a.width !== b.width || a.height !== b.height) return { problems: [`${where}: ${b.width}x${b.height}, reference ${a.width}x${a.height}`], worst: '' };
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.data.length; i++) {
    const ea = a.data[i]! > 127;
    const eb = b.data[i]! > 127;
    if (ea && eb) inter++;
    if (ea || eb) union++;
  }
  const iou = union === 0 ? 1 : inter / union;
  return { problems: iou >= 0.99 ? [] : [`${where}: edge IoU ${iou.toFixed(4)} < 0.99`], worst: `edge IoU ${iou.toFixed(4)}` };
}

/** Upscaled images: same size, luma PSNR >= 40 dB. */
async function comparePictures(ref: Buffer, got: Buffer, where = 'image'): Promise<Difference> {
  const [a, b] = await Promise.all([gray(ref), gray(got)]);
  if (a.width !== b.width || a.height !== b.height) return { problems: [`${where}: ${b.width}x${b.height}, reference ${a.width}x${a.height}`], worst: '' };
  let se = 0;
  for (let i = 0; i < a.data.length; i++) se += (a.data[i]! - b.data[i]!) ** 2;
  const mse = se / a.data.length;
  const psnr = mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
  return { problems: psnr >= 40 ? [] : [`${where}: luma PSNR ${psnr.toFixed(1)} dB < 40`], worst: `${a.width}x${a.height}, PSNR ${psnr === Infinity ? 'inf (identical)' : `${psnr.toFixed(1)} dB`}` };
}

function compareImageAnswer(images: (ref: Buffer, got: Buffer, where?: string) => Promise<Difference>) {
  return async (ref: Answer, got: Answer): Promise<Difference> => {
    if (ref.status !== got.status) return { problems: [`status ${got.status}, reference ${ref.status}: ${got.body.toString().slice(0, 200)}`], worst: '' };
    if (ref.type !== got.type) return { problems: [`content type ${got.type}, reference ${ref.type}`], worst: '' };
    return images(ref.body, got.body);
  };
}

const jpeg = (body: Buffer) => ({ type: 'image/jpeg', body });
const SCORE = 0.01;

/** The README's route table, then its DeepStack table: one request each. */
const checks: Check[] = [
  { route: '/ping', compare: compareJson(0) },
  { route: '/canny?format=png', raw: jpeg(cat), compare: compareImageAnswer(compareEdges) },
  { route: '/detect', raw: jpeg(face), compare: compareJson(SCORE) },
  { route: '/catfacedetection', raw: jpeg(cat), compare: compareJson(SCORE) },
  { route: '/catdetection', raw: jpeg(cat), compare: compareJson(SCORE) },
  { route: '/predict', raw: jpeg(car), compare: compareJson(0.0015) },
  { route: '/upscale?format=png', raw: jpeg(faceCrop), compare: compareImageAnswer(comparePictures) },
  { route: '/facedetection', raw: jpeg(face), compare: compareJson(SCORE) },
  { route: '/ocr', raw: jpeg(platePhoto), compare: compareJson(SCORE) },
  { route: '/alpr?region=us', raw: jpeg(platePhoto), compare: compareJson(SCORE) },
  { route: '/v1/vision/face/register', form: { userid: USER, image: face }, compare: compareJson(SCORE) },
  { route: '/facerecognition', raw: jpeg(face), compare: compareJson(SCORE) },
  { route: '/v1/vision/detection', form: { image: car }, compare: compareJson(SCORE) },
  { route: '/v1/vision/custom/list', method: 'POST', compare: compareJson(0) },
  { route: '/v1/vision/custom/yolox-nano', form: { image: cat }, compare: compareJson(SCORE) },
  { route: '/v1/vision/face', form: { image: face }, compare: compareJson(SCORE) },
  { route: '/v1/vision/face/recognize', form: { image: face }, compare: compareJson(SCORE) },
  { route: '/v1/vision/face/list', method: 'POST', compare: compareJson(0) },
  { route: '/v1/vision/face/match', form: { image1: face, image2: faceCrop }, compare: compareJson(SCORE) },
  { route: '/v1/vision/scene', form: { image: car }, compare: compareJson(SCORE) },
  { route: '/v1/vision/enhance', form: { image: faceCrop }, compare: compareJson(0, comparePictures) },
  { route: '/v1/image/superresolution', form: { image: faceCrop }, compare: compareJson(0, comparePictures) },
  { route: '/v1/vision/alpr', form: { upload: platePhoto, region: 'us' }, compare: compareJson(SCORE) },
  { route: '/v1/image/alpr', form: { upload: platePhoto, region: 'us' }, compare: compareJson(SCORE) },
  { route: '/v1/vision/ocr', form: { upload: platePhoto }, compare: compareJson(SCORE) },
  { route: '/v1/image/ocr', form: { upload: platePhoto }, compare: compareJson(SCORE) },
  { route: '/v1/status/ping', compare: compareJson(0) },
  { route: '/v1/status/updateavailable', compare: compareJson(0) },
  { route: '/v1/vision/face/delete', form: { userid: USER }, compare: compareJson(0) },
];

let failed = 0;
const started = performance.now();
console.log(`${'route'.padEnd(34)} ${'result'.padEnd(6)} ${'arm64 ms'.padStart(9)} ${'amd64 ms'.padStart(9)}  difference`);
for (const check of checks) {
  let line: string;
  let refMs = '-';
  try {
    const ref = await send(values.reference!, check);
    refMs = ref.ms.toFixed(0);
    const got = await send(values.candidate!, check);
    const diff = await check.compare(ref, got);
    if (ref.status !== 200) diff.problems.push(`reference answered ${ref.status}`);
    const ok = diff.problems.length === 0;
    if (!ok) failed++;
    line = `${check.route.padEnd(34)} ${(ok ? 'ok' : 'FAIL').padEnd(6)} ${got.ms.toFixed(0).padStart(9)} ${refMs.padStart(9)}  ${diff.worst}${ok ? '' : `  ${diff.problems.slice(0, 3).join('; ')}`}`;
  } catch (err) {
    failed++;
    line = `${check.route.padEnd(34)} ${'FAIL'.padEnd(6)} ${'-'.padStart(9)} ${refMs.padStart(9)}  ${(err as Error).message}`;
  }
  console.log(line);
}
console.log(`${checks.length - failed} passed, ${failed} failed (${((performance.now() - started) / 1000).toFixed(0)} s)`);
process.exit(failed ? 1 : 0);
