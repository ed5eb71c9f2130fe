import autocannon from 'autocannon';

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
  /** Latency of 2xx answers, ms (exact, from each response, not autocannon's integer histogram). */
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

/** Closed-loop load: `connections` clients, each sending the next request as soon as its answer arrives. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = [];
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: spec.method,
        headers: spec.headers,
        body: spec.body,
        connections: spec.connections,
        duration: spec.durationS,
        timeout: spec.timeoutS ?? 120,
        pipelining: 1,
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  latencies.sort((a, b) => a - b);
  const ok = latencies.length;
  const durationS = r.duration;
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = stat?.count ?? 0;
  return {
    rps: ok / durationS,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    mean: ok ? latencies.reduce((a, b) => a + b, 0) / ok : Number.NaN,
    ok,
    errors: r.errors + r.non2xx, // autocannon's errors include its timeouts
    statusCodes,
    durationS,
  };
}
