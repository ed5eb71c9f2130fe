import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { image, MODELS_DIR, REPO_ROOT } from '../helpers/paths.js';

const HOST = '127.0.0.1';
const SLOW_REQUESTS = 3;

interface Answer {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

/** One request on its own connection (no keep-alive agent), to 127.0.0.1 only. */
function send(port: number, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path, agent: false, headers: { ...headers, ...(body && { 'Content-Length': String(body.length) }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function connectOutcome(port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The sum of the OpenCV pool's running and queued tasks, from /metrics. */
async function inPool(port: number): Promise<number> {
  const text = (await send(port, 'GET', '/metrics')).body.toString();
  const value = (name: string) => Number(new RegExp(`^${name}\\{pool="opencv"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return value('cvserve_pool_running') + value('cvserve_pool_queue_depth');
}

describe('graceful shutdown of the real server process', () => {
  let child: ChildProcess;
  let port: number;
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  const logLines: string[] = [];
  let large: Buffer;

  before(async () => {
    large = await sharp(image('car.jpg')).resize(6000, 4000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
    child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PORT: '0',
        HOST,
        LOG_LEVEL: 'info',
        CVSERVE_MODELS_DIR: MODELS_DIR,
        CVSERVE_MODELS_FETCH: 'off',
        CVSERVE_OPENCV_WORKERS: '1',
        CVSERVE_ONNX_WORKERS: '1',
        CVSERVE_ONNX_THREADS: '1',
        CVSERVE_SHUTDOWN_TIMEOUT_MS: '120000',
        CVSERVE_REQUEST_TIMEOUT_MS: '120000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    let buffered = '';
    const listening = new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let newline;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          logLines.push(line);
          const port = (JSON.parse(line) as { address?: { port?: number } }).address?.port;
          if (port) resolve(port);
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => logLines.push(chunk.toString()));
      void exit.then(({ code }) => reject(new Error(`server exited early with ${code}:\n${logLines.join('\n')}`)));
    });
    port = await listening;
    await until(async () => ((await send(port, 'GET', '/readyz')).status === 200 ? true : undefined), '/readyz is 200');
  });

  after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('finishes in-flight requests, refuses new connections, turns /readyz to 503, and exits 0', async () => {
    // N slow requests: 24-megapixel Cannys queued on a single worker.
    const slow = Array.from({ length: SLOW_REQUESTS }, () =>
      send(port, 'POST', '/canny?format=png', large, { 'Content-Type': 'image/jpeg' }),
    );
    await until(async () => ((await inPool(port)) === SLOW_REQUESTS ? true : undefined), 'every slow request reached the pool');

    // A readiness probe caught mid-request: its connection is busy, so the drain keeps it open.
    const probe = net.connect({ host: HOST, port });
    await new Promise((r) => probe.once('connect', r));
    probe.write('GET /readyz HTTP/1.1\r\nHost: cvserve\r\n');
    await new Promise((r) => setTimeout(r, 50));

    assert.ok(child.kill('SIGTERM'));
    // A connection the kernel queued just as the listener closed is reset (ECONNRESET); after
    // that the port refuses outright. Any other outcome, or one still connecting, fails by timeout.
    const outcomes = new Set<string>();
    await until(async () => {
      const outcome = await connectOutcome(port);
      outcomes.add(outcome);
      return outcome === 'ECONNREFUSED' ? outcome : undefined;
    }, 'new connections are refused', 10_000);
    assert.deepEqual([...outcomes].filter((o) => o !== 'connected' && o !== 'ECONNRESET' && o !== 'ECONNREFUSED'), []);

    probe.write('\r\n');
    const probeAnswer = await new Promise<string>((resolve) => {
      let text = '';
      probe.on('data', (c: Buffer) => (text += c.toString()));
      probe.on('close', () => resolve(text));
    });
    assert.match(probeAnswer, /^HTTP\/1\.1 503 /);
    assert.match(probeAnswer, /connection: close/i);
    assert.ok(probeAnswer.endsWith('{"status":"not ready","missing":["shutting down"]}'), probeAnswer);

    const answers = await Promise.all(slow);
    assert.deepEqual(answers.map((a) => a.status), Array(SLOW_REQUESTS).fill(200));
    for (const a of answers) {
      assert.equal(a.headers['content-type'], 'image/png');
      const meta = await sharp(a.body).metadata();
      assert.deepEqual([meta.width, meta.height], [6000, 4000]);
    }

    assert.deepEqual(await exit, { code: 0, signal: null });
    const log = logLines.join('\n');
    assert.match(log, /shutting down: no new connections/);
    assert.match(log, /shutdown complete/);
    assert.doesNotMatch(log, /drain timeout reached/);
  });
});
