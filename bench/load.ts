import net from 'node:net';
import { Pool } from 'undici';
import { AnswerReader, type Answer } from './answer-reader.js';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: Buffer;
  connections: number;
  durationS: number;
  /** Per-request time limit; long enough for a queued full-size detection. */
  timeoutS?: number;
  /** `raw` (default): a prebuilt request on plain sockets; `undici`: undici's Pool, the client before issue 24's thirteenth look. */
  client?: LoadClient;
  /** Stop after this many requests in all (tests), if the duration has not run out first. */
  maxRequests?: number;
}

export type LoadClient = 'raw' | 'undici';

export interface LoadResult {
  /** Successful (2xx) answers per second. */
  rps: number;
  /** Latency of 2xx answers, ms, request sent to last body byte. */
  p50: number;
  p99: number;
  mean: number;
  /** Answers counted: 2xx. */
  ok: number;
  /** Connection errors, timeouts and non-2xx answers. */
  errors: number;
  statusCodes: Record<string, number>;
  durationS: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Latencies and status codes of one run, whichever client sends it. */
class Tally {
  readonly latencies: number[] = [];
  readonly statusCodes: Record<string, number> = {};
  errors = 0;

  answer(status: number, ms: number): void {
    this.statusCodes[status] = (this.statusCodes[status] ?? 0) + 1;
    if (status >= 200 && status < 300) this.latencies.push(ms);
    else this.errors++;
  }

  result(durationS: number): LoadResult {
    const latencies = this.latencies.sort((a, b) => a - b);
    const ok = latencies.length;
    return {
      rps: ok / durationS,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      mean: ok ? latencies.reduce((a, b) => a + b, 0) / ok : Number.NaN,
      ok,
      errors: this.errors,
      statusCodes: this.statusCodes,
      durationS,
    };
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Closed-loop load: `connections` clients, each sending the next request as soon as its answer
 * (body included) arrives, each latency measured around its own request. The load runs on the same
 * cores as the server, so its own CPU is charged to the server's rate: the default client writes a
 * prebuilt request on a plain socket and only frames the answer (answer-reader.ts), 0.21-0.25 ms of
 * CPU for a Frigate frame's exchange against undici's 0.53-0.72 (bench/NOTES.md, issue 24's
 * thirteenth look). `client: 'undici'` keeps the previous client for comparison. autocannon was dropped long
 * ago: against servers that close the connection after each answer (gunicorn's sync workers,
 * Flask's dev server) it wrote the next request into the closing socket and paired answers with
 * the wrong start times; both clients here open a new connection once the server says it closes.
 */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const tally = new Tally();
  const started = performance.now();
  const deadline = started + spec.durationS * 1000;
  let budget = spec.maxRequests ?? Number.POSITIVE_INFINITY;
  const more = () => performance.now() < deadline && budget-- > 0;
  if (spec.client === 'undici') await undiciClients(spec, tally, more);
  else await rawClients(spec, tally, more);
  return tally.result((performance.now() - started) / 1000);
}

async function undiciClients(spec: LoadSpec, tally: Tally, more: () => boolean): Promise<void> {
  const url = new URL(spec.url);
  const timeoutMs = (spec.timeoutS ?? 120) * 1000;
  const pool = new Pool(url.origin, { connections: spec.connections, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  async function client(): Promise<void> {
    while (more()) {
      const t0 = performance.now();
      try {
        const res = await pool.request({ path: url.pathname + url.search, method: spec.method, headers: spec.headers, body: spec.body });
        for await (const _chunk of res.body) void _chunk;
        tally.answer(res.statusCode, performance.now() - t0);
      } catch {
        tally.errors++;
        await pause(5); // a refused connection must not spin
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: spec.connections }, client));
  } finally {
    await pool.destroy();
  }
}

/** The request's bytes, built once and written as they are for every request. */
export function requestBytes(spec: Pick<LoadSpec, 'url' | 'method' | 'headers' | 'body'>): Buffer {
  const url = new URL(spec.url);
  const lines = [`${spec.method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(spec.headers ?? {})) lines.push(`${name}: ${value}`);
  if (spec.body || spec.method === 'POST') lines.push(`Content-Length: ${spec.body?.length ?? 0}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), spec.body ?? Buffer.alloc(0)]);
}

/** One connection, one request at a time: resolves with each answer once its last byte arrived. */
class RawConnection {
  private readonly reader = new AnswerReader();
  private waiting: { resolve: (a: Answer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private closed = false;
  /** Answers this connection has given: a reused connection the server closed meanwhile lost nothing. */
  served = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        const answer = this.reader.feed(chunk);
        if (answer) this.settle(answer);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    socket.on('end', () => {
      const answer = this.reader.end();
      if (answer) this.settle(answer);
      this.fail(new Error('connection closed'));
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static open(host: string, port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Writes the request; rejects with `lostNothing` set when the connection closed before any of the answer arrived. */
  exchange(request: Buffer, timeoutMs: number): Promise<Answer> {
    if (this.closed) return Promise.reject(Object.assign(new Error('connection closed'), { lostNothing: this.served > 0 }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no answer in ${timeoutMs} ms`), false), timeoutMs);
      this.waiting = { resolve, reject, timer };
      this.socket.write(request);
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private settle(answer: Answer): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    this.served++;
    if (!waiting) return;
    clearTimeout(waiting.timer);
    waiting.resolve(answer);
  }

  /** `closedByServer`: the connection ended or broke (a kept-alive one may be resent on), not our timeout. */
  private fail(err: Error, closedByServer = true): void {
    const lostNothing = closedByServer && this.served > 0 && this.reader.received === 0;
    this.closed = true;
    this.socket.destroy();
    const waiting = this.waiting;
    this.waiting = undefined;
    if (!waiting) return;
    clearTimeout(waiting.timer);
    waiting.reject(Object.assign(err, { lostNothing }));
  }
}

async function rawClients(spec: LoadSpec, tally: Tally, more: () => boolean): Promise<void> {
  const url = new URL(spec.url);
  if (url.protocol !== 'http:') throw new Error(`the raw client speaks plain HTTP only, not ${url.protocol}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 80);
  const request = requestBytes(spec);
  const timeoutMs = (spec.timeoutS ?? 120) * 1000;
  async function client(): Promise<void> {
    let connection: RawConnection | undefined;
    while (more()) {
      const t0 = performance.now();
      try {
        connection ??= await RawConnection.open(host, port);
        let answer: Answer;
        try {
          answer = await connection.exchange(request, timeoutMs);
        } catch (err) {
          // A kept-alive connection the server closed before this request: sent again on a new one, as a browser would.
          if (!(err as { lostNothing?: boolean }).lostNothing) throw err;
          connection = await RawConnection.open(host, port);
          answer = await connection.exchange(request, timeoutMs);
        }
        tally.answer(answer.status, performance.now() - t0);
        if (!answer.keepAlive) {
          connection.close();
          connection = undefined;
        }
      } catch {
        tally.errors++;
        connection?.close();
        connection = undefined;
        await pause(5); // a refused connection must not spin
      }
    }
    connection?.close();
  }
  await Promise.all(Array.from({ length: spec.connections }, client));
}
