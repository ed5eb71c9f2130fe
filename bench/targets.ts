import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Every benchmarked server listens here and nowhere else. */
export const BENCH_HOST = '127.0.0.1';

export interface Target {
  /** Short name shown in the table: cvserve, gunicorn-w2, flask-dev. */
  name: string;
  kind: 'cvserve' | 'peer';
  baseUrl: string;
  process: ChildProcess;
  /** Routes this target serves (the peer has no /catdetection or /upscale). */
  routes: ReadonlySet<string>;
  stop(): Promise<void>;
}

/** A port nobody listens on right now (the kernel picks it; the tiny race with other programs is acceptable here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, BENCH_HOST, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitUntilReady(baseUrl: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${baseUrl}: server exited with code ${child.exitCode} before it was ready`);
    try {
      const res = await fetch(`${baseUrl}/ping`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${baseUrl}: not ready after ${timeoutMs} ms`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

/** Waits until the server answers; a server that does not is stopped. Returns its stop function. */
async function readyOrStopped(child: ChildProcess, baseUrl: string): Promise<() => Promise<void>> {
  const stop = stopper(child);
  try {
    await waitUntilReady(baseUrl, child, 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}

function logFile(logDir: string, name: string): number {
  return openSync(path.join(logDir, `${name}.log`), 'w');
}

export interface CvServeOptions {
  repoRoot: string;
  modelsDir: string;
  logDir: string;
  /** Extra environment (CVSERVE_* settings under test). */
  env?: Record<string, string>;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  name?: string;
}

/** Starts the production build (dist/) of cvserve on 127.0.0.1 with a free port. */
export async function startCvServe(o: CvServeOptions): Promise<Target> {
  const port = await freePort();
  const out = logFile(o.logDir, o.name ?? 'cvserve');
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), 'dist/src/server.js'], {
    cwd: o.repoRoot,
    env: {
      ...process.env,
      HOST: BENCH_HOST,
      PORT: String(port),
      CVSERVE_MODELS_DIR: o.modelsDir,
      CVSERVE_MODELS_FETCH: 'off',
      NODE_ENV: 'production',
      ...o.env,
    },
    stdio: ['ignore', out, out],
  });
  const baseUrl = `http://${BENCH_HOST}:${port}`;
  const stop = await readyOrStopped(child, baseUrl);
  const routes = new Set(['/ping', '/canny', '/detect', '/catfacedetection', '/predict', '/catdetection', '/upscale', '/v1/vision/detection', '/alpr', '/ocr', '/v1/vision/alpr']);
  return { name: o.name ?? 'cvserve', kind: 'cvserve', baseUrl, process: child, routes, stop };
}

export interface PeerOptions {
  peerDir: string;
  modelsDir: string;
  logDir: string;
  mode: 'gunicorn' | 'flask-dev';
  /** Python with cv2 and flask (Debian's, not a pyenv shim). */
  python?: string;
}

const PEER_ROUTES = new Set(['/ping', '/canny', '/detect', '/catfacedetection', '/predict']);

/** Starts the Python peer: `gunicorn -w 2` (what a careful user deploys on 2 cores) or Flask's dev server (as the originals ran). */
export async function startPeer(o: PeerOptions): Promise<Target> {
  const port = await freePort();
  const name = o.mode === 'gunicorn' ? 'gunicorn-w2' : 'flask-dev';
  const out = logFile(o.logDir, name);
  const python = o.python ?? '/usr/bin/python3';
  const [cmd, args] =
    o.mode === 'gunicorn'
      ? [python, ['-m', 'gunicorn', '-w', '2', '-b', `${BENCH_HOST}:${port}`, '--timeout', '120', 'app:app']]
      : [python, ['app.py']];
  const child = spawn(cmd, args, {
    cwd: o.peerDir,
    env: { ...process.env, PORT: String(port), PEER_MODELS: o.modelsDir, PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', out, out],
  });
  const baseUrl = `http://${BENCH_HOST}:${port}`;
  const stop = await readyOrStopped(child, baseUrl);
  return { name, kind: 'peer', baseUrl, process: child, routes: PEER_ROUTES, stop };
}

/** The pid and every descendant (gunicorn's workers), from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: fields start after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of a process tree, in MB. */
export function treeRssMb(root: number): number {
  return processTree(root).reduce((sum, pid) => sum + statusKb(pid, 'VmRSS'), 0) / 1024;
}

/** Samples a process tree's RSS while a run goes on; stop() gives the peak (MB). */
export function sampleRss(root: number, everyMs = 100): { stop(): number } {
  let peak = treeRssMb(root);
  const timer = setInterval(() => {
    peak = Math.max(peak, treeRssMb(root));
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, treeRssMb(root));
    },
  };
}

/** CPU time (ms) used so far by a process tree, from /proc/<pid>/stat utime + stime. */
export function treeCpuMs(root: number): number {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {
      // gone
    }
  }
  return total;
}

/**
 * Waits until a server has finished the work left over from the last run (a closed connection does
 * not stop a running detection, and gunicorn still answers what sits in its backlog), so the next
 * run starts on quiet cores.
 */
export async function waitIdle(root: number, maxMs = 60_000): Promise<number> {
  const start = Date.now();
  let last = treeCpuMs(root);
  while (Date.now() - start < maxMs) {
    await new Promise((r) => setTimeout(r, 400));
    const now = treeCpuMs(root);
    if (now - last <= 20) return Date.now() - start; // ≤ 5% of one core
    last = now;
  }
  return Date.now() - start;
}
