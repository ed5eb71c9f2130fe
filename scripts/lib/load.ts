/** One HTTP request of a load run, sent with fetch to a loopback URL. */
export interface LoadRequest {
  path: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface LoadOutcome {
  index: number;
  status: number;
  /** Set when no HTTP answer arrived (connection error, timeout). */
  error?: string;
  bytes: number;
  ms: number;
  headers?: Headers;
  body?: Buffer;
}

export interface LoadReport {
  outcomes: LoadOutcome[];
  elapsedMs: number;
  ok: number;
  /** Answers per second that were 2xx. */
  okPerSecond: number;
}

export interface LoadOptions {
  baseUrl: string;
  total: number;
  concurrency: number;
  request: (index: number) => LoadRequest;
  /** Keep each response body in the outcome (for content checks). */
  keepBodies?: boolean;
  timeoutMs?: number;
  /** Called after each answer, e.g. to act half-way through a run. */
  onOutcome?: (outcome: LoadOutcome, done: number) => void;
}

/** Closed-loop load: `concurrency` clients each send the next of `total` requests when the last one answers. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(options.baseUrl)) {
    throw new Error(`load is only ever sent to loopback, not ${options.baseUrl}`);
  }
  const outcomes: LoadOutcome[] = [];
  let next = 0;
  const started = performance.now();
  const client = async () => {
    for (let i = next++; i < options.total; i = next++) {
      const req = options.request(i);
      const t0 = performance.now();
      let outcome: LoadOutcome;
      try {
        const res = await fetch(`${options.baseUrl}${req.path}`, {
          method: req.method ?? (req.body ? 'POST' : 'GET'),
          headers: req.headers,
          body: req.body as Uint8Array<ArrayBuffer> | undefined,
          signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
        });
        const body = Buffer.from(await res.arrayBuffer());
        outcome = { index: i, status: res.status, bytes: body.length, ms: performance.now() - t0, headers: res.headers, ...(options.keepBodies ? { body } : {}) };
      } catch (err) {
        outcome = { index: i, status: 0, error: errorText(err), bytes: 0, ms: performance.now() - t0 };
      }
      outcomes.push(outcome);
      options.onOutcome?.(outcome, outcomes.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, options.total) }, client));
  const elapsedMs = performance.now() - started;
  const ok = outcomes.filter((o) => o.status >= 200 && o.status < 300).length;
  outcomes.sort((a, b) => a.index - b.index);
  return { outcomes, elapsedMs, ok, okPerSecond: (ok * 1000) / elapsedMs };
}

function errorText(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message;
}
