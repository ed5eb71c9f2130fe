import { Pool } from 'undici';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: Buffer;
  connections: number;
  durationS: number;
  /** Per-request time limit; long enough for a queued full-size detection. */
  timeoutS?: number;
}

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

/**
 * Closed-loop load: `connections` clients, each sending the next request as soon as its answer
 * (body included) arrives. undici, not autocannon: autocannon writes the next request into a socket
 * the server is closing and never clears it on reconnect, so against servers without keep-alive
 * (gunicorn's sync workers, Flask's dev server) it runs more requests at once than asked and matches
 * answers to the wrong start times (p50 over a second for /ping). undici opens a new connection when
 * the server closes one, and each latency here is measured around its own request.
 */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.url);
  const timeoutMs = (spec.timeoutS ?? 120) * 1000;
  const pool = new Pool(url.origin, { connections: spec.connections, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  const started = performance.now();
  const deadline = started + spec.durationS * 1000;

  async function client(): Promise<void> {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const res = await pool.request({ path: url.pathname + url.search, method: spec.method, headers: spec.headers, body: spec.body });
        for await (const _chunk of res.body) void _chunk;
        const ms = performance.now() - t0;
        statusCodes[res.statusCode] = (statusCodes[res.statusCode] ?? 0) + 1;
        if (res.statusCode >= 200 && res.statusCode < 300) latencies.push(ms);
        else errors++;
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 5)); // a refused connection must not spin
      }
    }
  }

  try {
    await Promise.all(Array.from({ length: spec.connections }, client));
  } finally {
    await pool.destroy();
  }
  const durationS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const ok = latencies.length;
  return {
    rps: ok / durationS,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    mean: ok ? latencies.reduce((a, b) => a + b, 0) / ok : Number.NaN,
    ok,
    errors,
    statusCodes,
    durationS,
  };
}
