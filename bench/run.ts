/**
 * npm run bench -- [--vs-peer] [--duration 5] [--rounds 1] [--quick] [--only REGEX] [--no-build] [--no-kernels]
 *                  [--env NAME=VALUE ...] [--node-arg FLAG ...] [--cpu-prof] [--label TEXT] [--client raw|undici]
 *                  [--baseline GIT_REF [--baseline-env NAME=VALUE ...]]
 *
 * Builds cvserve, starts its production build on 127.0.0.1 (and with --vs-peer the Python peer, once
 * under gunicorn -w 2 and once under Flask's dev server), runs every scenario against each server in
 * turn (rotating who goes first), and prints one table: requests/s, p50, p99, errors, peak RSS, the
 * ratio to the better peer mode, and how close cvserve gets to its kernel-bound limit. The same goes
 * to bench/results/<time>.json. All traffic stays on 127.0.0.1. With `--rounds N` every row runs N
 * times over (the targets rotating each round) and the table shows medians, each ratio taken within
 * its round (bench/table.ts).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { onnxBusyThreads } from '../src/engines/engines.js';
import { loadManifest } from '../src/models/manifest.js';
import type { KernelReport, KernelTime } from './kernels.js';
import { runLoad, type LoadClient } from './load.js';
import { frigateBody } from './deepstack.js';
import { allScenarios, loadImages, multipartBody, type Scenario } from './scenarios.js';
import { BASELINE_NAME, fmt, printTable, type Row, type RowLimit } from './table.js';
import { sampleRss, startCvServe, startPeer, treeCpuMs, waitIdle, type Target } from './targets.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const shared = path.resolve(repoRoot, '..', 'shared');

interface Args {
  vsPeer: boolean;
  durationS: number;
  /** How many times each row runs against every target, one round after another (medians in the table). */
  rounds: number;
  /** Seconds of load at the row's concurrency before it is measured, for every target (steady state, not a cold start). */
  warmupS: number;
  quick: boolean;
  only?: RegExp;
  build: boolean;
  kernels: boolean;
  env: Record<string, string>;
  cpuProf: boolean;
  /** A git ref of cvserve to run side by side as "before" (built from `git archive` in /tmp). */
  baseline?: string;
  /** Extra environment for the baseline only. */
  baselineEnv: Record<string, string>;
  label?: string;
  /** Extra node flags for cvserve's server (not the baseline's). */
  nodeArgs: string[];
  /** The load generator (load.ts): `raw` sockets, or `undici` as before issue 24's thirteenth look. */
  client: LoadClient;
}

function loadClient(name: string): LoadClient {
  if (name === 'raw' || name === 'undici') return name;
  throw new Error(`--client is raw or undici, not ${name}`);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { vsPeer: false, durationS: 5, rounds: 1, warmupS: 2, quick: false, build: true, kernels: true, env: {}, cpuProf: false, baselineEnv: {}, nodeArgs: [], client: 'raw' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--vs-peer': a.vsPeer = true; break;
      case '--duration': a.durationS = Number(next()); break;
      case '--rounds': a.rounds = Number(next()); break;
      case '--warmup': a.warmupS = Number(next()); break;
      case '--quick': a.quick = true; break;
      case '--only': a.only = new RegExp(next()); break;
      case '--no-build': a.build = false; break;
      case '--no-kernels': a.kernels = false; break;
      case '--cpu-prof': a.cpuProf = true; break;
      case '--label': a.label = next(); break;
      case '--node-arg': a.nodeArgs.push(next()); break;
      case '--client': a.client = loadClient(next()); break;
      case '--baseline': a.baseline = next(); break;
      case '--baseline-env': {
        const [k, ...v] = next().split('=');
        a.baselineEnv[k!] = v.join('=');
        break;
      }
      case '--env': {
        const [k, ...v] = next().split('=');
        a.env[k!] = v.join('=');
        break;
      }
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  if (a.quick && !argv.includes('--duration')) a.durationS = 1;
  if (a.quick && !argv.includes('--warmup')) a.warmupS = 0;
  if (!(a.warmupS >= 0)) throw new Error('--warmup must be 0 or more seconds');
  if (!(a.durationS > 0)) throw new Error('--duration must be a positive number of seconds');
  if (!Number.isInteger(a.rounds) || a.rounds < 1) throw new Error('--rounds must be a whole number, 1 or more');
  return a;
}


/** A short description of one answer: box count, top label, or image type and size. */
async function describeAnswer(res: Response): Promise<string> {
  const type = res.headers.get('content-type') ?? '';
  if (!res.ok) return `HTTP ${res.status} ${(await res.text()).slice(0, 120)}`;
  if (type.includes('json')) {
    const body = (await res.json()) as { result?: { label?: string }[]; predictions?: { label: string; probability?: number; confidence?: number }[]; success?: boolean };
    if (Array.isArray(body.predictions) && body.predictions[0]?.confidence !== undefined) {
      const labels = [...new Set(body.predictions.map((p) => p.label))];
      return `${body.predictions.length} predictions${labels.length ? ` (${labels.join(',')})` : ''}`;
    }
    if (Array.isArray(body.result)) {
      const labels = [...new Set(body.result.map((r) => r.label).filter(Boolean))];
      return `${body.result.length} boxes${labels.length ? ` (${labels.join(',')})` : ''}`;
    }
    if (Array.isArray(body.predictions)) return `top ${body.predictions[0]?.label} ${body.predictions[0]?.probability?.toFixed(3)}`;
    return JSON.stringify(body).slice(0, 60);
  }
  const bytes = Buffer.from(await res.arrayBuffer());
  return `${type} ${bytes.length} B`;
}

interface Prepared {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Buffer;
}

function prepare(target: Target, s: Scenario, images: Awaited<ReturnType<typeof loadImages>>): Prepared {
  const url = `${target.baseUrl}${s.route}`;
  if (!s.image) return { url, method: s.method, headers: {} };
  const mp = s.form === 'frigate' ? frigateBody(images.bytes.get(s.image)!) : multipartBody(s.image, images.bytes.get(s.image)!);
  return { url, method: 'POST', headers: { 'content-type': mp.contentType }, body: mp.body };
}

/** One request per connection, concurrently: warms caches and JIT, and gives the answer to show. */
async function warmUp(p: Prepared, connections: number): Promise<string> {
  const send = () => fetch(p.url, { method: p.method, headers: p.headers, body: p.body ? new Uint8Array(p.body) : undefined, signal: AbortSignal.timeout(120_000) });
  const first = await describeAnswer(await send());
  await Promise.all(Array.from({ length: connections - 1 }, async () => void (await (await send()).arrayBuffer())));
  return first;
}

/**
 * bench/kernels.ts in a child process, its JSON report. Awaited, not run synchronously: a blocked
 * event loop misses the servers closing idle kept-alive connections meanwhile, and the next fetch
 * then picks a closed one ("other side closed" on the first row of an --only run with a baseline).
 */
async function kernelsFor(args: Args, only?: string): Promise<KernelReport | undefined> {
  if (!args.kernels) return undefined;
  const config = loadConfig({ ...process.env, ...args.env });
  if (!only) console.log(`measuring kernel times (one thread${args.quick ? ', quick' : ''})...`);
  const busy = onnxBusyThreads(config);
  const select = only ? [`--only=${only}`, `--budget=${ADJACENT_BUDGET_MS}`] : args.quick ? ['--quick'] : [];
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/kernels.ts', '--json', `--threads=${config.onnxThreads}`, `--busy-threads=${busy}`, `--at-once=${config.onnxWorkers}`, ...select], {
    cwd: repoRoot,
    env: { ...process.env, CVSERVE_MODELS_DIR: path.join(shared, 'models') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`bench/kernels.ts failed (${signal ?? `exit code ${code}`})`);
  return JSON.parse(Buffer.concat(out).toString()) as KernelReport;
}

/** How long a row's own kernel is timed just before cvserve's warm-up for the row and just after its run. */
const ADJACENT_BUDGET_MS = 1500;

/**
 * The row's kernel timed just before cvserve's warm-up and just after its run (servers idle): the
 * machine's speed drifts by 10% and more over minutes, so a limit from the kernel timed at the start
 * of the bench would judge a row by another moment's speed. The faster of the two timings, so that a
 * disturbance during one of them (22 ms against 16 once) never lowers the limit a row is judged by.
 * Undefined where the kernel was not measured.
 */
function adjacentKernels(before: KernelReport | undefined, after: KernelReport | undefined, name: string): KernelReport | undefined {
  const faster = (a?: KernelTime, b?: KernelTime): KernelTime | undefined => (a && b ? (b.ms < a.ms ? b : a) : undefined);
  const lone = faster(before?.kernels[name], after?.kernels[name]);
  if (!before || !lone) return undefined;
  const busy = before.busy ? faster(before.busy.kernels[name], after?.busy?.kernels[name]) : undefined;
  const atOnce = before.atOnce ? faster(before.atOnce.kernels[name], after?.atOnce?.kernels[name]) : undefined;
  return {
    ...before,
    kernels: { [name]: lone },
    busy: before.busy && busy ? { threads: before.busy.threads, kernels: { [name]: busy } } : undefined,
    atOnce: before.atOnce && atOnce ? { ...before.atOnce, kernels: { [name]: atOnce as KernelTime & { workerMs: number[] } } } : undefined,
  };
}

/** The manifest's model behind each ONNX kernel, for its own worker count. */
const KERNEL_MODEL: Record<string, string> = { predict: 'mobilenetv2-12-int8', catdetection: 'yolox-nano', 'upscale cat300': 'espcn-x3' };

const isOnnxRow = (s: Scenario) => (s.pool ? s.pool === 'onnx' : ['/predict', '/catdetection', '/upscale'].includes(s.route));

/**
 * Requests/s the workers could serve if each did nothing but the kernel. An ONNX model whose
 * workers switch to fewer threads while others run (CVSERVE_ONNX_BUSY_THREADS) gets the better of
 * one run at a time on all threads and every worker at once on the busy threads.
 */
function kernelLimit(s: Scenario, kernels: KernelReport | undefined, workers: { opencv: number; onnx: number }): number | undefined {
  const k = s.kernel ? kernels?.kernels[s.kernel] : undefined;
  if (!k) return undefined;
  if (!isOnnxRow(s)) return (workers.opencv * 1000) / k.ms;
  const model = loadManifest().models.find((m) => m.id === KERNEL_MODEL[s.kernel!]);
  const n = model?.workers ?? workers.onnx;
  if (model?.threads !== undefined) {
    // Its sessions run on the manifest's thread count, whatever the engine's: the kernel at that count.
    const own = model.threads === kernels?.busy?.threads ? kernels.busy.kernels[s.kernel!] : model.threads === kernels?.threads ? k : undefined;
    return own ? (n * 1000) / own.ms : undefined;
  }
  const busy = n > 1 ? kernels?.busy?.kernels[s.kernel!] : undefined;
  return busy ? Math.max(1000 / k.ms, (n * 1000) / busy.ms) : (n * 1000) / k.ms;
}

/**
 * kernelLimit with the busy-thread kernel timed on every worker at once (kernels.ts `atOnce`)
 * instead of alone: what the workers reach together when each does nothing but the kernel.
 * Undefined where that was not measured (one worker, a manifest thread count, a non-ONNX row).
 */
function atOnceLimit(s: Scenario, kernels: KernelReport | undefined, workers: { opencv: number; onnx: number }): number | undefined {
  const k = s.kernel ? kernels?.kernels[s.kernel] : undefined;
  const together = s.kernel ? kernels?.atOnce?.kernels[s.kernel] : undefined;
  if (!k || !together || !isOnnxRow(s)) return undefined;
  const model = loadManifest().models.find((m) => m.id === KERNEL_MODEL[s.kernel!]);
  if (model?.threads !== undefined || (model?.workers ?? workers.onnx) !== kernels!.atOnce!.workers) return undefined;
  return Math.max(1000 / k.ms, (kernels!.atOnce!.workers * 1000) / together.ms);
}


/**
 * The given ref's tree, exported with `git archive` into /tmp (the repository is not touched),
 * sharing this checkout's node_modules, and built once.
 */
function prepareBaseline(ref: string): string {
  const sha = execFileSync('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: repoRoot }).toString().trim();
  const dir = path.join(os.tmpdir(), `cvserve-baseline-${sha}`);
  if (!existsSync(path.join(dir, 'dist', 'src', 'server.js'))) {
    console.log(`building baseline ${ref} (${sha}) in ${dir}...`);
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C ${JSON.stringify(dir)}`], { cwd: repoRoot });
    if (!existsSync(path.join(dir, 'node_modules'))) symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    execFileSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
    // The ref's own native addon, as `npm ci` would build it there (a tree without one decodes with sharp).
    if (existsSync(path.join(dir, 'scripts', 'build-native.mjs'))) execFileSync(process.execPath, ['scripts/build-native.mjs'], { cwd: dir, stdio: 'inherit' });
  }
  return dir;
}

function gitCommit(): string {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot });
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot }).stdout.toString().trim() !== '';
  return `${r.stdout.toString().trim()}${dirty ? '+dirty' : ''}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const resultsDir = path.join(repoRoot, 'bench', 'results');
  const logDir = path.join(resultsDir, 'logs');
  mkdirSync(logDir, { recursive: true });

  const busy = spawnSync('sh', ['-c', 'ps -eo comm= | grep -c -E "^(node|python3|gunicorn)$"']).stdout.toString().trim();
  console.log(`load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}; ${busy} node/python processes before starting (numbers are noise on a busy machine)`);

  if (args.build) {
    console.log('building (npm run build)...');
    const b = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('npm run build failed');
  }

  const kernels = await kernelsFor(args);
  const config = loadConfig({ ...process.env, ...args.env });
  const workers = { opencv: config.opencvWorkers, onnx: config.onnxWorkers };
  const images = await loadImages(path.join(shared, 'images'));
  const scenarios = allScenarios().filter((s) => !args.only || args.only.test(s.id));

  const targets: Target[] = [];
  const stopAll = () => Promise.all(targets.map((t) => t.stop()));
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    const profDir = path.join(resultsDir, 'prof');
    targets.push(
      await startCvServe({
        repoRoot,
        modelsDir: path.join(shared, 'models'),
        logDir,
        env: args.env,
        nodeArgs: [...args.nodeArgs, ...(args.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])],
      }),
    );
    if (args.baseline) {
      const dir = prepareBaseline(args.baseline);
      targets.push(await startCvServe({ repoRoot: dir, modelsDir: path.join(shared, 'models'), logDir, env: { ...args.env, ...args.baselineEnv }, name: BASELINE_NAME }));
    }
    if (args.vsPeer) {
      const peer = { peerDir: path.join(shared, 'peers', 'flask_peer'), modelsDir: path.join(shared, 'models'), logDir };
      targets.push(await startPeer({ ...peer, mode: 'gunicorn' }));
      targets.push(await startPeer({ ...peer, mode: 'flask-dev' }));
    }
    console.log(`targets: ${targets.map((t) => `${t.name} ${t.baseUrl}`).join(', ')}`);

    const rows: Row[] = [];
    const limits = new Map<string, RowLimit>();
    const adjacentTimes: string[] = [];
    let turn = 0;
    for (const s of scenarios) {
      const limit = kernelLimit(s, kernels, workers);
      if (limit) limits.set(s.id, { limit, atOnce: atOnceLimit(s, kernels, workers) });
      const serving = targets.filter((t) => t.routes.has(s.route));
      for (let round = 0; round < args.rounds; round++) {
        const order = serving.map((_, i) => serving[(i + turn) % serving.length]!);
        turn++;
        const label = args.rounds > 1 ? `${s.id} #${round + 1}` : s.id;
        for (const t of order) {
          const p = prepare(t, s, images);
          // Before the warm-up: the server would otherwise start the row after seconds of idling, which
          // lets V8 shrink its heaps and drop code the row then compiles again.
          const adjacent = limit && !args.quick && t.name === 'cvserve' ? s.kernel : undefined;
          const kernelBefore = adjacent ? await kernelsFor(args, adjacent) : undefined;
          let answer: string;
          try {
            answer = await warmUp(p, s.connections);
            if (args.warmupS > 0 && !answer.startsWith('HTTP ')) await runLoad({ ...p, client: args.client, connections: s.connections, durationS: args.warmupS * s.durationFactor });
          } catch (err) {
            answer = `failed: ${(err as Error).message}`;
          }
          if (answer.startsWith('HTTP ') || answer.startsWith('failed')) {
            console.log(`  ${label.padEnd(22)} ${t.name.padEnd(12)} skipped: ${answer}`);
            rows.push({ scenario: s.id, target: t.name, round, rps: 0, p50: NaN, p99: NaN, mean: NaN, ok: 0, errors: 1, statusCodes: {}, durationS: 0, peakRssMb: NaN, cpuMsPerReq: NaN, answer });
            continue;
          }
          await waitIdle(t.process.pid!);
          const rss = sampleRss(t.process.pid!);
          const cpuBefore = treeCpuMs(t.process.pid!);
          const result = await runLoad({ ...p, client: args.client, connections: s.connections, durationS: args.durationS * s.durationFactor });
          const cpuMsPerReq = (treeCpuMs(t.process.pid!) - cpuBefore) / Math.max(1, result.ok);
          const peakRssMb = rss.stop();
          const row: Row = { scenario: s.id, target: t.name, round, ...result, peakRssMb, cpuMsPerReq, answer };
          rows.push(row);
          console.log(`  ${label.padEnd(22)} ${t.name.padEnd(12)} ${fmt(result.rps).padStart(8)} req/s  p50 ${fmt(result.p50)} ms  p99 ${fmt(result.p99)} ms  errors ${result.errors}  cpu ${fmt(cpuMsPerReq)} ms/req  [${answer}]`);
          await waitIdle(t.process.pid!);
          if (adjacent) {
            const kernelAfter = await kernelsFor(args, adjacent);
            const own = adjacentKernels(kernelBefore, kernelAfter, adjacent);
            const ownLimit = own ? kernelLimit(s, own, workers) : undefined;
            if (ownLimit) row.limit = { limit: ownLimit, atOnce: atOnceLimit(s, own, workers) };
            const ms = (r?: KernelReport) => fmt(r?.busy?.kernels[adjacent]?.ms ?? r?.kernels[adjacent]?.ms ?? NaN, 2);
            const together = (r?: KernelReport) => fmt(r?.atOnce?.kernels[adjacent]?.ms ?? NaN, 2);
            const atOnce = own?.atOnce ? `; at once ${together(kernelBefore)} and ${together(kernelAfter)} ms, limit ${fmt(atOnceLimit(s, own, workers) ?? NaN)}` : '';
            adjacentTimes.push(`  ${label.padEnd(26)} ${adjacent}: ${ms(kernelBefore)} ms before, ${ms(kernelAfter)} after; limit ${fmt(ownLimit ?? NaN)} (${fmt(limit ?? NaN)} from the start of the run)${atOnce}`);
          }
        }
      }
    }

    const table = printTable(rows, scenarios.map((s) => s.id), limits);
    console.log(`\n${table}\n`);
    if (kernels) {
      console.log('kernel times (limit = workers / kernel time; ONNX with busy threads: the better of one run on all threads and every worker on the busy ones; "at once": every worker running the busy kernel at the same time):');
      const named = (suffix: string, ks: Record<string, KernelTime> = {}) => Object.entries(ks).map(([n, k]) => [`${n} ${suffix}`, k] as const);
      for (const [name, k] of [...Object.entries(kernels.kernels), ...named('busy', kernels.busy?.kernels), ...named('at once', kernels.atOnce?.kernels)]) {
        console.log(`  ${name.padEnd(16)} ${fmt(k.ms, 2).padStart(8)} ms (cpu ${fmt(k.cpuMs, 2)} ms)  ${k.what}`);
      }
      for (const [name, why] of Object.entries(kernels.skipped)) console.log(`  ${name.padEnd(16)} skipped: ${why}`);
      console.log(`  workers: opencv ${workers.opencv}, onnx ${workers.onnx} x ${config.onnxThreads} threads (${onnxBusyThreads(config)} while another run of the model is in flight; manifest overrides apply)`);
      if (adjacentTimes.length) {
        console.log(`each row's "% of limit" is from its kernel timed just before cvserve's warm-up and just after its run, the faster of the two (the busy time where there is one, ${ADJACENT_BUDGET_MS} ms each):`);
        for (const line of adjacentTimes) console.log(line);
      }
    }

    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const report = {
      when: new Date().toISOString(),
      label: args.label,
      commit: gitCommit(),
      node: process.version,
      cores: os.availableParallelism?.() ?? os.cpus().length,
      loadAverageBefore: os.loadavg(),
      args: { ...args, only: args.only?.source },
      workers: { ...workers, onnxThreads: config.onnxThreads },
      kernels,
      limits: Object.fromEntries(limits),
      adjacentKernels: adjacentTimes.map((l) => l.trim()),
      rows,
      table,
    };
    const file = path.join(resultsDir, `${stamp}${args.label ? `-${args.label.replace(/[^\w.-]+/g, '_')}` : ''}.json`);
    writeFileSync(file, JSON.stringify(report, null, 2));
    writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify(report, null, 2));
    console.log(`\nwrote ${path.relative(repoRoot, file)}`);
  } finally {
    await stopAll();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
