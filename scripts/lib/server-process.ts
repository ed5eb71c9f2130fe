import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** A cvserve process started as an operator would start it, listening on loopback. */
export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  /** The last lines of stdout (pino JSON) and stderr, in arrival order. */
  output: string[];
  /** Resolves with the first line (already written or to come) matching `match`; rejects if the process exits first. */
  waitForLine(match: RegExp | ((line: string) => boolean)): Promise<string>;
  /** Lines matching `match` so far. */
  countLines(match: RegExp): number;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit; SIGKILL after `killAfterMs`. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resident set size of the whole process (all threads), in KiB, from /proc. */
  rssKiB(): number;
  /** Peak resident set size (VmHWM), in KiB. */
  peakRssKiB(): number;
}

export interface StartServerOptions {
  /** argv[0] and the rest, e.g. ['node', 'dist/src/server.js']. */
  command: readonly string[];
  cwd: string;
  /** The complete environment of the process (nothing is inherited unless passed here). */
  env: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** How long to wait for the "listening" log line. */
  startTimeoutMs?: number;
}

/**
 * Spawns the server and waits for its "cvserve listening on" log line, which carries the port it
 * bound (so PORT=0 works and no port is guessed). That line is logged at info: LOG_LEVEL must
 * not be above info.
 */
export function startServerProcess(options: StartServerOptions): Promise<ServerProcess> {
  const [cmd, ...args] = options.command;
  if (!cmd) throw new Error('empty command');
  const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, uid: options.uid, gid: options.gid, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  /** Every line ever seen is offered to the waiters; `output` keeps only the last ones. */
  const lineWaiters = new Set<(line: string) => void>();
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  // 'close' comes after the last line of output was read; 'exit' may come before.
  const outputEnded = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const keep = (line: string) => {
    output.push(line);
    if (output.length > 1000) output.splice(0, output.length - 500);
    for (const waiter of [...lineWaiters]) waiter(line);
  };
  const test = (match: RegExp | ((line: string) => boolean), line: string) => (typeof match === 'function' ? match(line) : match.test(line));
  const waitForLine = (match: RegExp | ((line: string) => boolean)) =>
    new Promise<string>((resolve, reject) => {
      const seen = output.find((line) => test(match, line));
      if (seen !== undefined) return resolve(seen);
      if (exitInfo && child.stdout!.readableEnded && child.stderr!.readableEnded) {
        return reject(new Error(`exited (${JSON.stringify(exitInfo)}) without a line matching ${String(match)}`));
      }
      const waiter = (line: string) => {
        if (!test(match, line)) return;
        lineWaiters.delete(waiter);
        resolve(line);
      };
      lineWaiters.add(waiter);
      void outputEnded.then(() => {
        if (!lineWaiters.delete(waiter)) return;
        reject(new Error(`exited (${JSON.stringify(exitInfo)}) without a line matching ${String(match)}\n${output.slice(-20).join('\n')}`));
      });
    });
  createInterface({ input: child.stderr! }).on('line', keep);

  return new Promise<ServerProcess>((resolve, reject) => {
    const fail = (why: string) => {
      child.kill('SIGKILL');
      reject(new Error(`${options.command.join(' ')}: ${why}\n${output.slice(-30).join('\n')}`));
    };
    const timer = setTimeout(() => fail(`no "listening" log line within ${options.startTimeoutMs ?? 60_000} ms`), options.startTimeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      fail(err.message);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${options.command.join(' ')} exited (code ${code}, signal ${signal}) before listening\n${output.slice(-30).join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      const port = listeningPort(line);
      if (port === undefined) return;
      clearTimeout(timer);
      const pid = child.pid!;
      resolve({
        child,
        pid,
        port,
        url: `http://127.0.0.1:${port}`,
        output,
        waitForLine,
        countLines: (match) => output.filter((line) => match.test(line)).length,
        exited,
        stop(signal = 'SIGTERM', killAfterMs = 30_000) {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill(signal);
            const kill = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
            void exited.then(() => clearTimeout(kill));
          }
          return exited;
        },
        rssKiB: () => procStatusKiB(pid, 'VmRSS'),
        peakRssKiB: () => procStatusKiB(pid, 'VmHWM'),
      });
    });
  });
}

function listeningPort(line: string): number | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const entry = JSON.parse(line) as { msg?: string; address?: { port?: number } };
    if (entry.msg?.startsWith('cvserve listening') && typeof entry.address?.port === 'number') return entry.address.port;
  } catch {
    // not a log line
  }
  return undefined;
}

function procStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

export interface ReplicaOptions {
  /** The repository (runs src/server.ts with tsx) or a built tree (`dist: true`). */
  cwd: string;
  modelsDir: string;
  dist?: boolean;
  /** Settings on top of the replica defaults (one OpenCV worker, one ONNX worker with one thread). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the "listening" log line (default 60 s). */
  startTimeoutMs?: number;
}

/**
 * One cvserve replica on 127.0.0.1 with a kernel-chosen port, sized like one pod of deploy/k8s.
 * The allocator variables of the calling shell (MALLOC_ARENA_MAX, LD_PRELOAD) are passed on, so the
 * same run can be compared under glibc, glibc with two arenas, and jemalloc.
 */
export function startReplica(options: ReplicaOptions): Promise<ServerProcess> {
  return startServerProcess({
    command: options.dist ? ['node', 'dist/src/server.js'] : ['node', '--import', 'tsx', 'src/server.ts'],
    cwd: options.cwd,
    startTimeoutMs: options.startTimeoutMs,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      CVSERVE_MODELS_DIR: options.modelsDir,
      CVSERVE_MODELS_FETCH: 'off',
      CVSERVE_OPENCV_WORKERS: '1',
      CVSERVE_ONNX_WORKERS: '1',
      CVSERVE_ONNX_THREADS: '1',
      ...Object.fromEntries(['MALLOC_ARENA_MAX', 'LD_PRELOAD'].filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
      ...options.env,
    },
  });
}

/** Polls `GET /readyz` until it answers 200. */
export async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
