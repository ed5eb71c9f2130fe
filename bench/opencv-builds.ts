/**
 * The two OpenCV builds side by side: our WebAssembly-SIMD build (vendor/opencv/) against
 * @techstark/opencv-js from npm. Kernels run in one process, the builds alternating call by call,
 * so machine noise lands on both; module load and the first calls after it are timed in fresh
 * child processes, alternating too.
 *
 *   node --import tsx bench/opencv-builds.ts [--quick] [--json]
 *
 * Single thread, wall time: run it on a quiet machine and read the ratios.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import sharp from 'sharp';
import { loadOpenCv, OPENCV_BUILDS, vendorOpenCvDir, warmUpOpenCv, type CV, type OpenCvBuild } from '../src/engines/opencv/load.js';
import { median } from './table.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const sharedDir = path.resolve(repoRoot, '..', 'shared');
const modelsDir = path.resolve(repoRoot, process.env.CVSERVE_MODELS_DIR ?? path.join(sharedDir, 'models'));
const imagesDir = path.join(sharedDir, 'images');

const FACE = 'haarcascade_frontalface_alt.xml';
const CAT = 'haarcascade_frontalcatface_extended.xml';

async function grayOf(cv: CV, file: string): Promise<CV> {
  const { data, info } = await sharp(path.join(imagesDir, file)).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const src = new cv.Mat(info.height, info.width, cv.CV_8UC3);
  src.data.set(data);
  const gray = new cv.Mat();
  cv.cvtColor(src, gray, cv.COLOR_RGB2GRAY);
  src.delete();
  return gray;
}

function cascade(cv: CV, name: string): CV {
  cv.FS_createDataFile('/', name, readFileSync(path.join(modelsDir, name)), true, false, false);
  const c = new cv.CascadeClassifier();
  if (!c.load(name)) throw new Error(`cannot load ${name}`);
  cv.FS_unlink(`/${name}`);
  return c;
}

interface Kernel {
  run: () => void;
  /** What the last run found (edge pixels, boxes), compared across builds outside the timing. */
  answer: () => number;
}

/** One build's kernels as closures over its own Mats (all kept for the process's life). */
async function kernelsOf(cv: CV): Promise<Record<string, Kernel>> {
  const face = await grayOf(cv, 'test_face_processing.jpg');
  const car = await grayOf(cv, 'car.jpg');
  const cat = await grayOf(cv, 'cat_small.jpg');
  const faceCascade = cascade(cv, FACE);
  const catCascade = cascade(cv, CAT);
  const edges = new cv.Mat();
  const rects = new cv.RectVector();
  const min = new cv.Size(25, 25);
  const max = new cv.Size(0, 0);
  const edgeCount = () => {
    let n = 0;
    for (const v of edges.data as Uint8Array) if (v) n++;
    return n;
  };
  const boxCount = () => rects.size() as number;
  return {
    'canny 640x482': { run: () => cv.Canny(face, edges, 100, 200), answer: edgeCount },
    'canny 2372x1334': { run: () => cv.Canny(car, edges, 100, 200), answer: edgeCount },
    'haar face 640x482': { run: () => faceCascade.detectMultiScale(face, rects, 1.1, 5, 0, min, max), answer: boxCount },
    'haar cat face 1000x1334': { run: () => catCascade.detectMultiScale(cat, rects, 1.1, 5, 0, min, max), answer: boxCount },
  };
}

interface KernelResult {
  simdMs: number;
  npmMs: number;
  /** npm time / SIMD time (medians of wall time): how many times faster the SIMD build is. */
  speedup: number;
  /** The same from process CPU time per call, less disturbed when other work shares the cores. */
  simdCpuMs: number;
  npmCpuMs: number;
  cpuSpeedup: number;
  rounds: number;
  sameAnswer: boolean;
}

async function compareKernels(quick: boolean): Promise<Record<string, KernelResult>> {
  const loaded = new Map<OpenCvBuild, Record<string, Kernel>>();
  for (const build of OPENCV_BUILDS) loaded.set(build, await kernelsOf(await loadOpenCv(build)));
  const results: Record<string, KernelResult> = {};
  for (const name of Object.keys(loaded.get('simd')!)) {
    const times: Record<OpenCvBuild, number[]> = { simd: [], npm: [] };
    const cpu: Record<OpenCvBuild, number[]> = { simd: [], npm: [] };
    const answers: Record<OpenCvBuild, number> = { simd: -1, npm: -1 };
    for (const build of OPENCV_BUILDS) {
      loaded.get(build)![name]!.run(); // one more warm call each
      answers[build] = loaded.get(build)![name]!.answer();
    }
    const budgetMs = (quick ? 1500 : 6000) * (name.startsWith('haar') ? 3 : 1);
    const start = performance.now();
    let round = 0;
    while (round < 3 || (performance.now() - start < budgetMs && round < 200)) {
      const order = round % 2 ? (['npm', 'simd'] as const) : (['simd', 'npm'] as const);
      for (const build of order) {
        const c = process.cpuUsage();
        const t = performance.now();
        loaded.get(build)![name]!.run();
        times[build].push(performance.now() - t);
        const used = process.cpuUsage(c);
        cpu[build].push((used.user + used.system) / 1000);
      }
      round++;
    }
    const simdMs = median(times.simd);
    const npmMs = median(times.npm);
    const simdCpuMs = median(cpu.simd);
    const npmCpuMs = median(cpu.npm);
    results[name] = { simdMs, npmMs, speedup: npmMs / simdMs, simdCpuMs, npmCpuMs, cpuSpeedup: npmCpuMs / simdCpuMs, rounds: round, sameAnswer: answers.simd === answers.npm };
  }
  return results;
}

/** In a fresh process: module load time, and the first calls' times with or without the loader's warm-up. */
async function child(build: OpenCvBuild, warm: boolean, calls: number): Promise<void> {
  const t0 = performance.now();
  const cv = await loadOpenCv(build, { warmUp: false });
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  if (warm) warmUpOpenCv(cv);
  const warmUpMs = warm ? performance.now() - t1 : 0;
  const kernels = await kernelsOf(cv);
  const first: Record<string, number[]> = {};
  for (const name of ['canny 640x482', 'haar face 640x482']) {
    first[name] = [];
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      kernels[name]!.run();
      first[name].push(performance.now() - t);
    }
  }
  process.stdout.write(JSON.stringify({ loadMs, warmUpMs, first }));
}

interface ChildResult {
  loadMs: number;
  warmUpMs: number;
  first: Record<string, number[]>;
}

function runChild(build: OpenCvBuild, warm: boolean, calls: number): ChildResult {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', build, warm ? 'warm' : 'cold', String(calls)], { cwd: repoRoot, encoding: 'utf8' });
  return JSON.parse(out) as ChildResult;
}

function sizes() {
  const dir = vendorOpenCvDir();
  const npmFile = path.join(repoRoot, 'node_modules/@techstark/opencv-js/dist/opencv.js');
  const npmText = readFileSync(npmFile, 'utf8');
  // The npm build embeds its wasm as base64 in the one JS file.
  const b64 = /data:application\/octet-stream;base64,([A-Za-z0-9+/=]+)/.exec(npmText)?.[1];
  return {
    simd: {
      wasmBytes: brotliDecompressSync(readFileSync(path.join(dir, 'opencv-simd.wasm.br'))).length,
      storedBytes: statSync(path.join(dir, 'opencv-simd.wasm.br')).size + statSync(path.join(dir, 'opencv-simd.cjs')).size,
    },
    npm: { wasmBytes: b64 ? Buffer.from(b64, 'base64').length : NaN, storedBytes: statSync(npmFile).size },
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1] as OpenCvBuild, args[2] === 'warm', Number(args[3]));
  const quick = args.includes('--quick');
  const json = args.includes('--json');

  const size = sizes();
  const loads = { simd: [] as ChildResult[], npm: [] as ChildResult[] };
  const warmed = { simd: [] as ChildResult[], npm: [] as ChildResult[] };
  const reps = quick ? 2 : 4;
  const calls = quick ? 12 : 30;
  for (let r = 0; r < reps; r++) {
    for (const build of r % 2 ? (['npm', 'simd'] as const) : (['simd', 'npm'] as const)) {
      loads[build].push(runChild(build, false, calls));
      warmed[build].push(runChild(build, true, calls));
    }
  }
  const kernels = await compareKernels(quick);

  const firstCalls = (runs: ChildResult[], kernel: string) => runs[0]!.first[kernel]!.map((_, i) => median(runs.map((r) => r.first[kernel]![i]!)));
  const report = {
    sizes: size,
    loadMs: { simd: median(loads.simd.map((r) => r.loadMs)), npm: median(loads.npm.map((r) => r.loadMs)) },
    warmUpMs: { simd: median(warmed.simd.map((r) => r.warmUpMs)), npm: median(warmed.npm.map((r) => r.warmUpMs)) },
    /** Median time of the n-th call after load, without and with the loader's warm-up. */
    firstCalls: Object.fromEntries(
      OPENCV_BUILDS.flatMap((b) => ['canny 640x482', 'haar face 640x482'].flatMap((k) => [
        [`${b} ${k} cold`, firstCalls(loads[b], k)],
        [`${b} ${k} warmed`, firstCalls(warmed[b], k)],
      ])),
    ),
    kernels,
  };
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const f = (x: number, d = 2) => x.toFixed(d);
  console.log('kernel (median per call)     npm ms  own SIMD ms  speedup | npm CPU ms  SIMD CPU ms  speedup | rounds  same answer');
  for (const [name, k] of Object.entries(kernels)) {
    console.log(
      `${name.padEnd(26)} ${f(k.npmMs).padStart(8)} ${f(k.simdMs).padStart(12)} ${(f(k.speedup) + 'x').padStart(8)} | ` +
        `${f(k.npmCpuMs).padStart(10)} ${f(k.simdCpuMs).padStart(12)} ${(f(k.cpuSpeedup) + 'x').padStart(8)} | ${String(k.rounds).padStart(6)}  ${k.sameAnswer}`,
    );
  }
  console.log(`module load (fresh process)  ${f(report.loadMs.npm, 0).padStart(6)} ${f(report.loadMs.simd, 0).padStart(12)}`);
  console.log(`warm-up (${'loader'})             ${f(report.warmUpMs.npm, 0).padStart(6)} ${f(report.warmUpMs.simd, 0).padStart(12)}`);
  console.log(`wasm bytes                ${String(size.npm.wasmBytes).padStart(9)} ${String(size.simd.wasmBytes).padStart(12)}`);
  console.log(`stored bytes (repo/npm)   ${String(size.npm.storedBytes).padStart(9)} ${String(size.simd.storedBytes).padStart(12)}`);
  console.log('\nfirst calls after load, ms (median of fresh processes):');
  for (const [name, xs] of Object.entries(report.firstCalls)) console.log(`  ${name.padEnd(36)} ${xs.map((x) => f(x, x < 10 ? 1 : 0)).join(' ')}`);
}

await main();
