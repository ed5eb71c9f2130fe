import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { startServerProcess, waitReady, type ServerProcess } from '../../scripts/lib/server-process.js';
import { parseRawAnswer } from '../helpers/http.js';
import { guardedEnv } from '../helpers/net.js';
import { image, MODELS_DIR, REPO_ROOT } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

/**
 * Graceful shutdown of the real server process. The in-flight requests are POST /gate of the test
 * plugin (tests/helpers/plugins/gate.mjs): they stay in flight until the test sends SIGUSR2, so
 * "requests are in flight when the signal comes" holds by construction.
 */

const HOST = '127.0.0.1';
const PLUGINS_DIR = new URL('../helpers/plugins/', import.meta.url).pathname;
const IN_FLIGHT = 3;

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

/** Starting a process is slow on a busy machine; these bounds only turn a hang into a failure. */
const START_MS = 600_000;

function startGateServer(env: Record<string, string>): Promise<ServerProcess> {
  return startServerProcess({
    command: [process.execPath, '--import', 'tsx', 'src/server.ts'],
    cwd: REPO_ROOT,
    startTimeoutMs: START_MS,
    env: guardedEnv({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      HOST,
      PORT: '0',
      LOG_LEVEL: 'info',
      CVSERVE_MODELS_DIR: MODELS_DIR,
      CVSERVE_MODELS_FETCH: 'off',
      CVSERVE_PLUGINS_DIR: PLUGINS_DIR,
      CVSERVE_OPENCV_WORKERS: '1',
      CVSERVE_ONNX_WORKERS: '1',
      CVSERVE_ONNX_THREADS: '1',
      ...env,
    }),
  });
}

/** Waits until new connections are refused. A connection the kernel queued as the listener closed may be reset first. */
async function refusesConnections(port: number): Promise<void> {
  const outcomes = new Set<string>();
  await until(async () => {
    const outcome = await connectOutcome(port);
    outcomes.add(outcome);
    return outcome === 'ECONNREFUSED';
  }, 'new connections are refused');
  assert.deepEqual([...outcomes].filter((o) => o !== 'connected' && o !== 'ECONNRESET' && o !== 'ECONNREFUSED'), []);
}

let photo: Buffer;
before(async () => {
  photo = await sharp(image('test_face_processing.jpg')).resize(64, 48).jpeg().toBuffer();
});
const gate = (port: number) => send(port, 'POST', '/gate', photo, { 'Content-Type': 'image/jpeg' });

describe('graceful shutdown of the real server process (SIGTERM)', { timeout: 1_200_000 }, () => {
  let server: ServerProcess;
  before(async () => {
    server = await startGateServer({ CVSERVE_SHUTDOWN_TIMEOUT_MS: '120000', CVSERVE_REQUEST_TIMEOUT_MS: '120000' });
    await waitReady(server.url, START_MS);
  });
  after(() => server.stop('SIGKILL'));

  it('finishes in-flight requests, refuses new connections, turns /readyz to 503, and exits 0', { timeout: 300_000 }, async () => {
    const inFlight = Array.from({ length: IN_FLIGHT }, () => gate(server.port));
    await server.waitForLine(new RegExp(`^\\[gate\\] entered ${IN_FLIGHT}$`));

    // A readiness probe caught mid-request: /healthz and the start of /readyz in one write. Once the
    // /healthz answer is back, the server has read the rest too, so the connection is busy with a
    // request and the drain must keep it open.
    const probe = net.connect({ host: HOST, port: server.port });
    let probeText = '';
    probe.on('data', (c: Buffer) => (probeText += c.toString('latin1')));
    const probeClosed = new Promise<void>((resolve) => probe.once('close', () => resolve()));
    await new Promise((resolve) => probe.once('connect', resolve));
    probe.write('GET /healthz HTTP/1.1\r\nHost: cvserve\r\n\r\nGET /readyz HTTP/1.1\r\nHost: cvserve\r\n');
    await until(() => /\{"status":"ok"\}$/.test(probeText), 'the /healthz answer on the probe connection');

    assert.ok(server.child.kill('SIGTERM'));
    await server.waitForLine(/shutting down: no new connections/);
    await refusesConnections(server.port);

    probe.write('\r\n');
    await probeClosed;
    const readyz = parseRawAnswer(probeText.slice(probeText.indexOf('HTTP/1.1', 1)));
    assert.equal(readyz.status, 503, probeText.slice(0, 600));
    assert.equal(readyz.headers.connection, 'close');
    assert.equal(readyz.body, '{"status":"not ready","missing":["shutting down"]}');

    assert.equal(server.countLines(/^\[gate\] entered/), IN_FLIGHT, 'nothing else reached the route');
    server.child.kill('SIGUSR2');
    const answers = await Promise.all(inFlight);
    assert.deepEqual(answers.map((a) => a.status), Array(IN_FLIGHT).fill(200));
    assert.deepEqual(answers.map((a) => JSON.parse(a.body.toString()).passed).sort(), [1, 2, 3]);
    for (const a of answers) assert.equal(a.headers.connection, 'close', 'answers while draining close their connection');

    assert.deepEqual(await server.exited, { code: 0, signal: null });
    const log = server.output.join('\n');
    assert.match(log, /shutdown complete/);
    assert.doesNotMatch(log, /drain timeout reached/);
  });
});

describe('drain timeout and SIGINT', { timeout: 1_200_000 }, () => {
  let server: ServerProcess;
  before(async () => {
    server = await startGateServer({ CVSERVE_SHUTDOWN_TIMEOUT_MS: '50', CVSERVE_REQUEST_TIMEOUT_MS: '120000' });
    await waitReady(server.url, START_MS);
  });
  after(() => server.stop('SIGKILL'));

  it('on SIGINT, closes what is still in flight once CVSERVE_SHUTDOWN_TIMEOUT_MS has passed, and exits 0', { timeout: 120_000 }, async () => {
    // Held until the process ends: only the drain timeout can end this request.
    const stuck = gate(server.port).then(
      (a) => `answered ${a.status}`,
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    await server.waitForLine(/^\[gate\] entered 1$/);
    assert.ok(server.child.kill('SIGINT'));
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.equal(await stuck, 'ECONNRESET', 'the connection was closed without an answer');
    const log = server.output.join('\n');
    assert.match(log, /"reason":"SIGINT".*shutting down/);
    assert.match(log, /drain timeout reached; closing remaining connections/);
    assert.match(log, /shutdown complete/);
  });
});
