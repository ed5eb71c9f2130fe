/**
 * A small round-robin HTTP load balancer for trying cvserve replicas on one machine (tests and
 * scripts/scale.ts), doing what a real one does that matters for zero-loss restarts:
 *
 * - round robin over the backends whose readiness check (`GET /readyz` by default) answers 200;
 * - a request is retried on the next backend only when it never reached a server: the connection
 *   was refused, or reset before any byte of an answer arrived. Anything answered is passed on as
 *   it is, errors included; in-flight requests of a stopping server are covered by its drain.
 *
 *   npx tsx scripts/lb-proxy.ts --port 8080 http://127.0.0.1:8081 http://127.0.0.1:8082
 *
 * Listens on 127.0.0.1 only and forwards only to loopback backends.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { realpathSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export interface BackendStats {
  url: string;
  /** Ready by the last health check, and not refusing connections since. */
  up: boolean;
  /** Requests sent to it (retries included). */
  sent: number;
  /** Requests it answered (any status). */
  answered: number;
  /** Requests sent to it and not answered yet. */
  inflight: number;
  /** Requests that failed on it before any answer and were retried elsewhere. */
  retriedAway: number;
}

export interface RoundRobinProxy {
  url: string;
  backends: BackendStats[];
  /** Requests that no backend answered (502 to the client). */
  failed: number;
  close(): Promise<void>;
}

export interface ProxyOptions {
  backends: string[];
  port?: number;
  /** Readiness path polled on each backend; empty: no health checks. */
  healthPath?: string;
  healthIntervalMs?: number;
  /** Largest request body buffered (bodies are buffered so a request can be retried). */
  maxBodyBytes?: number;
}

const LOOPBACK = /^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+$/;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'content-length']);
/** Errors that mean the request never reached a server process. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

export async function startRoundRobinProxy(options: ProxyOptions): Promise<RoundRobinProxy> {
  for (const b of options.backends) if (!LOOPBACK.test(b)) throw new Error(`backends must be loopback http://host:port URLs, not ${b}`);
  const backends: BackendStats[] = options.backends.map((url) => ({ url, up: true, sent: 0, answered: 0, inflight: 0, retriedAway: 0 }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const maxBody = options.maxBodyBytes ?? 64 * 1024 * 1024;
  let next = 0;
  const state = { failed: 0 };

  /** Backends in the order this request tries them: round robin, ready ones first. */
  const order = (): BackendStats[] => {
    const start = next++ % backends.length;
    const rotated = backends.map((_, i) => backends[(start + i) % backends.length]!);
    return [...rotated.filter((b) => b.up), ...rotated.filter((b) => !b.up)];
  };

  const server = http.createServer(async (req, res) => {
    let body: Buffer;
    try {
      body = await readBody(req, maxBody);
    } catch {
      res.writeHead(413, { 'Content-Type': 'text/plain' }).end('request body too large for the proxy\n');
      return;
    }
    for (const backend of order()) {
      const outcome = await forward(backend, req, body, res, agent);
      if (outcome === 'answered') return;
      backend.retriedAway++;
      if (outcome === 'refused') backend.up = false;
    }
    state.failed++;
    if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end('no backend answered\n');
  });
  server.keepAliveTimeout = 30_000;

  let timer: NodeJS.Timeout | undefined;
  if (options.healthPath !== '') {
    const path = options.healthPath ?? '/readyz';
    const check = () =>
      Promise.all(
        backends.map(async (b) => {
          try {
            const r = await fetch(`${b.url}${path}`, { signal: AbortSignal.timeout(2000) });
            await r.arrayBuffer();
            b.up = r.status === 200;
          } catch {
            b.up = false;
          }
        }),
      );
    await check();
    timer = setInterval(() => void check(), options.healthIntervalMs ?? 1000);
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    backends,
    get failed() {
      return state.failed;
    },
    async close() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      agent.destroy();
    },
  };
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.destroy();
        reject(new Error('too large'));
      } else chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * Sends one request to one backend and streams its answer to the client. 'refused'/'reset': the
 * backend never answered and nothing was sent to the client, so the caller may try another.
 */
function forward(backend: BackendStats, req: IncomingMessage, body: Buffer, res: ServerResponse, agent: http.Agent): Promise<'answered' | 'refused' | 'reset'> {
  const headers: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
  headers['content-length'] = body.length;
  headers['x-forwarded-for'] = req.socket.remoteAddress;
  const target = new URL(req.url ?? '/', backend.url);
  backend.sent++;
  backend.inflight++;
  return new Promise((resolve) => {
    let answered = false;
    const upstream = http.request(target, { method: req.method, headers, agent }, (answer) => {
      answered = true;
      const out: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
      if (answer.headers['content-length'] !== undefined) out['content-length'] = answer.headers['content-length'];
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      answer.pipe(res);
      answer.once('end', () => {
        backend.inflight--;
        backend.answered++;
        resolve('answered');
      });
      answer.once('error', () => {
        // Part of an answer was already passed on: the client sees a broken response, never a retry.
        backend.inflight--;
        res.destroy();
        resolve('answered');
      });
    });
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      if (answered) return;
      backend.inflight--;
      if (err.code && NOT_DELIVERED.has(err.code)) return resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'reset');
      // Anything else (e.g. a timeout after the request was sent) may have reached the server.
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`backend error: ${err.code ?? err.message}\n`);
      resolve('answered');
    });
    upstream.end(body);
  });
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { port: { type: 'string', default: '8080' }, health: { type: 'string', default: '/readyz' } },
  });
  const proxy = await startRoundRobinProxy({ backends: positionals, port: Number(values.port), healthPath: values.health });
  console.log(`round-robin proxy on ${proxy.url} → ${positionals.join(', ')}`);
  const stop = () => void proxy.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) await main();
