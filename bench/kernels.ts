/**
 * Pure kernel times, one thread, no HTTP: what each route's compute costs at the least. The bench
 * turns them into a throughput limit (workers / kernel time) and shows how close the service gets.
 *
 *   node --import tsx bench/kernels.ts [--quick] [--json] [--only=name,name] [--budget=ms]
 *                                      [--threads=N] [--busy-threads=N] [--at-once=WORKERS]
 *
 * The bench runs it once before its rows (every kernel), and again with --only just before the
 * warm-up and just after the run of each of cvserve's rows (that row's kernel): the machine's speed
 * drifts over minutes, and a row's limit is the kernel's speed at the time of that row.
 * Run it on a quiet machine: it measures wall time.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { feedFrom } from '../src/engines/onnx/free-dims.js';
import { siblingModule, WorkerPool } from '../src/engines/pool.js';
import { sessionOptions } from '../src/engines/onnx/session-options.js';
import { loadOpenCv, type CV } from '../src/engines/opencv/load.js';
import { jpegAddon } from '../src/image/jpeg-decoder.js';
import { loadManifest } from '../src/models/manifest.js';
import type { KernelWorkerData, TimeTask, WorkerTimes } from './kernel-worker.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const sharedDir = path.resolve(repoRoot, '..', 'shared');

export interface KernelTime {
  /** Median wall time of one call, ms. */
  ms: number;
  /** Mean process CPU time of one call, ms (all threads): less disturbed by other load than wall time. */
  cpuMs: number;
  iterations: number;
  /** What was timed. */
  what: string;
  /** Images per call (batched ONNX runs), for per-image rates. */
  perCall?: number;
}

export interface KernelReport {
  threads: number;
  cores: number;
  kernels: Record<string, KernelTime>;
  /** The ONNX kernels again at the intra-op threads of a run that starts while another runs (CVSERVE_ONNX_BUSY_THREADS), where that is fewer. */
  busy?: { threads: number; kernels: Record<string, KernelTime> };
  /**
   * The ONNX kernels with every worker of a model running its own session at the same time, at the
   * busy threads: what the workers can do together on this machine (cores share caches and memory).
   * `ms` is the time per run that gives their summed rate: workers / Σ(1 / each worker's median).
   */
  atOnce?: { workers: number; threads: number; kernels: Record<string, KernelTime & { workerMs: number[] }> };
  /** Kernels that could not be measured (a missing model, a module not installed yet). */
  skipped: Record<string, string>;
}

async function timeIt(fn: () => void | Promise<void>, budgetMs: number, minIterations: number): Promise<{ ms: number; cpuMs: number; iterations: number }> {
  await fn(); // warm-up: first-call allocations, lazy init
  const times: number[] = [];
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  while (times.length < minIterations || performance.now() - start < budgetMs) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
    if (times.length >= 200) break;
  }
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, cpuMs: (cpu.user + cpu.system) / 1000 / times.length, iterations: times.length };
}

async function rgb(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function loadCascade(cv: CV, modelsDir: string, name: string): CV {
  cv.FS_createDataFile('/', name, readFileSync(path.join(modelsDir, name)), true, false, false);
  const c = new cv.CascadeClassifier();
  if (!c.load(name)) throw new Error(`cannot load ${name}`);
  cv.FS_unlink(`/${name}`);
  return c;
}

interface Selection {
  /** Time of each kernel, ms of wall time (at least 3 runs, at most 200). */
  budget: number;
  /** Only these kernels (names as in the report, without " busy"); all when absent. */
  only?: ReadonlySet<string>;
}

const wanted = (sel: Selection, name: string) => !sel.only || sel.only.has(name);

const OPENCV_KERNELS = ['detect face', 'canny face', 'decode face', 'detect car', 'canny car', 'decode car'];

async function openCvKernels(report: KernelReport, modelsDir: string, imagesDir: string, sel: Selection): Promise<void> {
  if (!OPENCV_KERNELS.some((k) => wanted(sel, k))) return;
  const cv = await loadOpenCv();
  const face = loadCascade(cv, modelsDir, 'haarcascade_frontalface_alt.xml');
  const budget = sel.budget;
  for (const [label, file] of [['face', 'test_face_processing.jpg'], ['car', 'car.jpg']] as const) {
    const img = await rgb(path.join(imagesDir, file));
    const src = new cv.Mat(img.height, img.width, cv.CV_8UC3);
    const gray = new cv.Mat();
    const edges = new cv.Mat();
    const rects = new cv.RectVector();
    try {
      src.data.set(img.data);
      cv.cvtColor(src, gray, cv.COLOR_RGB2GRAY);
      const size = `${img.width}x${img.height}`;
      const minRuns = budget < 1000 ? 1 : 3;
      if (wanted(sel, `detect ${label}`)) {
        const detect = await timeIt(() => face.detectMultiScale(gray, rects, 1.1, 5, 0, new cv.Size(25, 25)), label === 'car' ? budget * 2 : budget, minRuns);
        report.kernels[`detect ${label}`] = { ...detect, what: `detectMultiScale(1.1, 5, 25) on the ${size} gray image, frontalface_alt` };
      }
      // The service's own kernel: the addon's gray conversion and Canny where it is built (CVSERVE_CANNY).
      const addon = process.env.CVSERVE_CANNY === 'opencv' ? null : jpegAddon();
      const map = new Uint8Array(img.width * img.height);
      if (wanted(sel, `canny ${label}`)) {
        const canny = addon?.cannySync
          ? await timeIt(() => void addon.cannySync!(img.data, img.width, img.height, 3, 100, 200, map), budget, minRuns)
          : await timeIt(() => {
              cv.cvtColor(src, gray, cv.COLOR_RGB2GRAY);
              cv.Canny(gray, edges, 100, 200);
            }, budget, minRuns);
        report.kernels[`canny ${label}`] = {
          ...canny,
          what: addon?.cannySync ? `the addon's gray + Canny(100, 200) on ${size} (native/jpeg/canny.c)` : `cvtColor(RGB2GRAY) + Canny(100, 200) on ${size}, pixels already in wasm`,
        };
      }
      if (wanted(sel, `decode ${label}`)) {
        const decode = await timeIt(async () => void (await rgb(path.join(imagesDir, file))), budget, 3);
        report.kernels[`decode ${label}`] = { ...decode, what: `sharp JPEG decode to RGB, ${size} (libvips threads)` };
      }
    } finally {
      src.delete();
      gray.delete();
      edges.delete();
      rects.delete();
    }
  }
  face.delete();
}

type Ort = typeof import('onnxruntime-node');

type OnnxKernel = [name: string, file: string, shape: number[], what: string, perCall?: number];

/** YOLOX's space-to-depth feed, where the manifest declares one. */
function yoloxSpaceToDepth(): { tensor: string } | undefined {
  return loadManifest().models.find((m) => m.id === 'yolox-nano')?.input.spaceToDepth;
}

/** The ONNX kernels: the service's graphs, YOLOX fed past its Focus layer when the manifest says so. */
function onnxModels(yolox: { tensor: string } | undefined): OnnxKernel[] {
  return [
    ['predict', 'mobilenetv2-12-int8.onnx', [1, 3, 224, 224], 'session.run, MobileNetV2 int8, batch 1'],
    ['predict batch 8', 'mobilenetv2-12-int8.onnx', [8, 3, 224, 224], 'session.run, MobileNetV2 int8, batch 8', 8],
    yolox
      ? ['catdetection', 'yolox_nano.onnx', [1, 12, 208, 208], 'session.run, YOLOX-nano 416x416 fed past its Focus layer']
      : ['catdetection', 'yolox_nano.onnx', [1, 3, 416, 416], 'session.run, YOLOX-nano 416x416'],
    ['upscale cat300', 'espcn-x3.onnx', [4, 1, 224, 224], 'session.run, ESPCN x3, 4 tiles of 224 (a 300x400 image)', 4],
  ];
}

/**
 * Each ONNX kernel on `workers` worker threads at once, each with its own session of `threads`
 * intra-op threads (bench/kernel-worker.ts), all timing their runs over the same window.
 */
async function onnxKernelsAtOnce(report: KernelReport, modelsDir: string, workers: number, threads: number, sel: Selection): Promise<void> {
  const yolox = yoloxSpaceToDepth();
  const into: NonNullable<KernelReport['atOnce']>['kernels'] = {};
  for (const [name, file, shape, what, perCall] of onnxModels(yolox)) {
    if (!wanted(sel, name)) continue;
    const data: KernelWorkerData = { modelPath: path.join(modelsDir, file), shape, threads, feedFrom: name === 'catdetection' ? yolox?.tensor : undefined };
    const pool = new WorkerPool({ name: `kernel ${name}`, filename: siblingModule(import.meta.url, 'kernel-worker'), size: workers, maxQueue: workers, workerData: data });
    try {
      await pool.ready();
      const cpu0 = process.cpuUsage();
      const task: TimeTask = { budgetMs: sel.budget, minIterations: 3 };
      const results = await Promise.all(Array.from({ length: workers }, () => pool.run<WorkerTimes>(task)));
      const cpu = process.cpuUsage(cpu0);
      const workerMs = results.map((r) => [...r.times].sort((a, b) => a - b)[Math.floor(r.times.length / 2)]!);
      const iterations = results.reduce((a, r) => a + r.times.length, 0);
      const ms = workers / workerMs.reduce((a, t) => a + 1 / t, 0);
      into[name] = { ms, cpuMs: (cpu.user + cpu.system) / 1000 / iterations, iterations, what: `${what}, ${workers} workers at once, ${threads} intra-op threads each`, perCall, workerMs };
    } catch (err) {
      report.skipped[`${name} at once`] = (err as Error).message;
    } finally {
      await pool.close();
    }
  }
  report.atOnce = { workers, threads, kernels: into };
}

async function onnxKernels(report: KernelReport, modelsDir: string, threads: number, sel: Selection, into = report.kernels): Promise<void> {
  let ort: Ort;
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    report.skipped.onnx = `onnxruntime-node not loadable: ${(err as Error).message}`;
    return;
  }
  const budget = sel.budget;
  // The service's session options and graphs: int8 kernels as this CPU gets them, YOLOX fed past
  // its Focus layer when the manifest says so, so the limit is the service's own kernel's.
  const options = sessionOptions({ intraOpNumThreads: threads, memoryArena: true });
  const yolox = yoloxSpaceToDepth();
  const models = onnxModels(yolox);
  for (const [name, file, shape, what, perCall] of models) {
    if (!wanted(sel, name)) continue;
    let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
    try {
      const model = path.join(modelsDir, file);
      session = name === 'catdetection' && yolox
        ? await ort.InferenceSession.create(feedFrom(readFileSync(model), yolox.tensor, shape), options)
        : await ort.InferenceSession.create(model, options);
    } catch (err) {
      report.skipped[name] = `${file}: ${(err as Error).message}`;
      continue;
    }
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 255) / 255; // deterministic, image-like range
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, shape) };
    const t = await timeIt(async () => void (await session.run(feeds)), budget, 3);
    into[name] = { ...t, what: `${what}, ${threads} intra-op threads`, perCall };
    await session.release();
  }
}

export async function measureKernels(
  options: { quick?: boolean; budgetMs?: number; only?: string[]; threads?: number; busyThreads?: number; atOnceWorkers?: number; modelsDir?: string; imagesDir?: string } = {},
): Promise<KernelReport> {
  const cores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const threads = options.threads ?? cores;
  const modelsDir = options.modelsDir ?? path.join(sharedDir, 'models');
  const imagesDir = options.imagesDir ?? path.join(sharedDir, 'images');
  const report: KernelReport = { threads, cores, kernels: {}, skipped: {} };
  const sel: Selection = { budget: options.budgetMs ?? (options.quick ? 300 : 2000), only: options.only ? new Set(options.only) : undefined };
  await openCvKernels(report, modelsDir, imagesDir, sel);
  await onnxKernels(report, modelsDir, threads, sel);
  if (options.busyThreads !== undefined && options.busyThreads < threads) {
    report.busy = { threads: options.busyThreads, kernels: {} };
    await onnxKernels(report, modelsDir, options.busyThreads, sel, report.busy.kernels);
  }
  if (options.atOnceWorkers !== undefined && options.atOnceWorkers > 1) {
    await onnxKernelsAtOnce(report, modelsDir, options.atOnceWorkers, Math.min(threads, options.busyThreads ?? threads), sel);
  }
  return report;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const threadsArg = args.find((a) => a.startsWith('--threads='));
  const busyArg = args.find((a) => a.startsWith('--busy-threads='));
  const onlyArg = args.find((a) => a.startsWith('--only='));
  const budgetArg = args.find((a) => a.startsWith('--budget='));
  const atOnceArg = args.find((a) => a.startsWith('--at-once='));
  const report = await measureKernels({
    quick: args.includes('--quick'),
    only: onlyArg ? onlyArg.slice('--only='.length).split(',') : undefined,
    budgetMs: budgetArg ? Number(budgetArg.split('=')[1]) : undefined,
    busyThreads: busyArg ? Number(busyArg.split('=')[1]) : undefined,
    atOnceWorkers: atOnceArg ? Number(atOnceArg.split('=')[1]) : undefined,
    threads: threadsArg ? Number(threadsArg.split('=')[1]) : process.env.CVSERVE_ONNX_THREADS ? Number(process.env.CVSERVE_ONNX_THREADS) : undefined,
    modelsDir: process.env.CVSERVE_MODELS_DIR ? path.resolve(repoRoot, process.env.CVSERVE_MODELS_DIR) : undefined,
  });
  if (args.includes('--json')) {
    process.stdout.write(JSON.stringify(report));
  } else {
    for (const [name, k] of Object.entries(report.kernels)) {
      const rate = (1000 / k.ms) * (k.perCall ?? 1);
      console.log(`${name.padEnd(18)} ${k.ms.toFixed(2).padStart(9)} ms wall ${k.cpuMs.toFixed(2).padStart(9)} ms cpu  (${rate.toFixed(1)}/s, n=${k.iterations})  ${k.what}`);
    }
    for (const [name, why] of Object.entries(report.skipped)) console.log(`${name.padEnd(18)} skipped: ${why}`);
  }
  process.exit(0);
}
