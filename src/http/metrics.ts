import diagnostics from 'node:diagnostics_channel';
import type { Doc } from './openapi.js';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { poolStats } from '../engines/engines.js';
import { TASK_CHANNEL, type PoolStats, type TaskEvent } from '../engines/pool.js';
import type { AnyResource, ServiceSet } from '../resources/contract.js';

export interface Metrics {
  registry: Registry;
  /** Times every request; mount first so refused requests (401, 404, 413) are counted too. */
  observeRequests: RequestHandler;
  /** `GET /metrics` in the Prometheus text format. */
  handler: RequestHandler;
  /** Counts and times one answered request that did not go through Express (the /ping fast path). */
  countRequest(method: string, route: string, status: number, seconds: number): void;
  /** Stops listening to the worker pools. */
  close(): void;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const INFERENCE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Prometheus metrics for one app, in its own registry (several apps can live in one process):
 * requests per route and status with latency, per worker pool the queue depth, rejections, drops,
 * utilisation, worker replacements and heap, task (inference) time per pool and op, and the
 * default process metrics. Pool figures are read from `stats()` at scrape time; task times come
 * from the pools' diagnostics channel, counted only for this app's pools.
 */
export function createMetrics(deps: { engines: ServiceSet; resources: readonly AnyResource[] }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const pools = () => poolStats(deps.engines);

  const labelNames = ['method', 'route', 'status'] as const;
  const requests = new Counter({ name: 'cvserve_http_requests_total', help: 'HTTP requests answered', labelNames, registers: [registry] });
  const latency = new Histogram({
    name: 'cvserve_http_request_duration_seconds',
    help: 'Time from request to the end of the answer',
    labelNames,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });

  const inference = new Histogram({
    name: 'cvserve_inference_seconds',
    help: 'Time a worker spent on one task (OpenCV op or model run), per pool (onnx:<model>) and op',
    labelNames: ['pool', 'op', 'outcome'],
    buckets: INFERENCE_BUCKETS,
    registers: [registry],
  });

  poolGauge(registry, pools, 'cvserve_pool_size', 'Worker threads the pool runs', (s) => s.size);
  poolGauge(registry, pools, 'cvserve_pool_workers', 'Workers started and able to take tasks', (s) => s.workers);
  poolGauge(registry, pools, 'cvserve_pool_running', 'Tasks on a worker', (s) => s.running);
  poolGauge(registry, pools, 'cvserve_pool_queue_depth', 'Tasks waiting for a worker', (s) => s.queued);
  poolGauge(registry, pools, 'cvserve_pool_utilization', 'Share of the workers busy now (running / size)', (s) => s.running / s.size);
  poolGauge(registry, pools, 'cvserve_pool_heap_bytes', 'Heap the live workers hold (OpenCV wasm memory)', (s) => s.heapBytes);
  poolGauge(registry, pools, 'cvserve_pool_max_worker_heap_bytes', 'Largest heap one live worker holds (what CVSERVE_WORKER_MAX_HEAP_MB caps)', (s) => s.maxWorkerHeapBytes);
  poolGauge(registry, pools, 'cvserve_pool_up', '1 when every worker has started and one at least serves', (s) => (s.up ? 1 : 0));
  poolCounter(registry, pools, 'cvserve_pool_rejected_total', 'Tasks refused with 503 because the queue was full', (s) => s.rejected);
  poolCounter(registry, pools, 'cvserve_pool_dropped_total', 'Queued tasks dropped because the client left or the deadline passed', (s) => s.dropped);
  poolCounter(registry, pools, 'cvserve_onnx_runs_total', 'ONNX model runs by session: all-threads (it ran alone), busy-threads (another worker of the model was running, now or at one of its last two starts; CVSERVE_ONNX_BUSY_THREADS)', (s) => s.runs ?? {}, 'session');
  poolCounter(registry, pools, 'cvserve_pool_busy_seconds_total', 'Worker time spent on tasks; rate / size is the utilisation', (s) => s.busySeconds);
  poolCounter(registry, pools, 'cvserve_pool_tasks_total', 'Tasks finished by a worker', (s) => ({ completed: s.completed, failed: s.failed }), 'outcome');
  poolCounter(registry, pools, 'cvserve_pool_worker_restarts_total', 'Workers replaced: retired (heap cap, wasm trap) or crashed', (s) => ({ retired: s.retired, crashed: s.crashed }), 'reason');

  const decodes = () => deps.engines.decodeBudget.stats();
  decodeGauge(registry, 'cvserve_decode_memory_held_bytes', 'Decode memory the running image decodes hold (estimated from their headers; CVSERVE_DECODE_MEMORY_BYTES caps it)', () => decodes().heldBytes);
  decodeGauge(registry, 'cvserve_decode_memory_capacity_bytes', 'CVSERVE_DECODE_MEMORY_BYTES', () => decodes().capacityBytes);
  decodeGauge(registry, 'cvserve_decodes_running', 'Image decodes running', () => decodes().running);
  decodeGauge(registry, 'cvserve_decodes_waiting', 'Image decodes waiting for decode memory', () => decodes().waiting);

  // Task events from every pool in the process; only this app's pools count.
  let ownPools = new Set<number>();
  const onTask = (message: unknown) => {
    const event = message as TaskEvent;
    if (!ownPools.has(event.poolId)) ownPools = new Set(pools().map((s) => s.id));
    if (!ownPools.has(event.poolId)) return;
    inference.observe({ pool: event.pool, op: event.op, outcome: event.ok ? 'ok' : 'error' }, event.seconds);
  };
  diagnostics.subscribe(TASK_CHANNEL, onTask);
  const stopFaceMetrics = faceMetrics(registry, deps.engines);

  const knownRoutes = new Set(['/ping', '/healthz', '/readyz', '/metrics', ...deps.resources.map((r) => `/${r.name}`)]);
  const routeOf = (req: Request): string => {
    // The matched route's pattern keeps the label set bounded; unmatched paths share one label.
    if (req.route?.path && typeof req.route.path === 'string') return `${req.baseUrl}${req.route.path}`;
    return knownRoutes.has(req.path) ? req.path : 'unmatched';
  };

  const observeRequests: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.once('finish', () => {
      const labels = { method: normaliseMethod(req.method), route: routeOf(req), status: String(res.statusCode) };
      requests.inc(labels);
      latency.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  };

  const handler: RequestHandler = (_req, res, next) => {
    registry.metrics().then((text) => {
      res.setHeader('Cache-Control', 'no-store');
      res.type(registry.contentType).send(text);
    }, next);
  };

  return {
    registry,
    observeRequests,
    handler,
    countRequest(method, route, status, seconds) {
      const labels = { method: normaliseMethod(method), route, status: String(status) };
      requests.inc(labels);
      latency.observe(labels, seconds);
    },
    close() {
      diagnostics.unsubscribe(TASK_CHANNEL, onTask);
      stopFaceMetrics();
    },
  };
}

const RECOGNIZE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The face gallery: its size (read at scrape time, only once the gallery is open: a scrape never
 * opens the database), recognize latency, and faces recognized vs unknown (the match rate is
 * recognized / (recognized + unknown)). Returns the unsubscribe.
 */
function faceMetrics(registry: Registry, engines: ServiceSet): () => void {
  const faces = engines.faces;
  if (!faces) return () => {};
  new Gauge({
    name: 'cvserve_face_gallery_size',
    help: 'Face gallery contents: registered users, and descriptors (one per registered photo)',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await faces.counts().catch(() => undefined);
      if (!counts) return;
      this.set({ kind: 'users' }, counts.users);
      this.set({ kind: 'descriptors' }, counts.descriptors);
    },
  });
  const latency = new Histogram({
    name: 'cvserve_face_recognize_seconds',
    help: 'Time of one face recognition (decode, describe every face, match against the gallery)',
    buckets: RECOGNIZE_BUCKETS,
    registers: [registry],
  });
  const matches = new Counter({
    name: 'cvserve_face_matches_total',
    help: 'Faces recognized: matched to a registered user, or unknown',
    labelNames: ['outcome'],
    registers: [registry],
  });
  matches.inc({ outcome: 'recognized' }, 0);
  matches.inc({ outcome: 'unknown' }, 0);
  return faces.observe((event) => {
    latency.observe(event.seconds);
    if (event.recognized) matches.inc({ outcome: 'recognized' }, event.recognized);
    if (event.unknown) matches.inc({ outcome: 'unknown' }, event.unknown);
  });
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
function normaliseMethod(method: string): string {
  return METHODS.has(method) ? method : 'other';
}

function decodeGauge(registry: Registry, name: string, help: string, value: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(value());
    },
  });
}

function poolGauge(registry: Registry, pools: () => PoolStats[], name: string, help: string, value: (s: PoolStats) => number): void {
  new Gauge({
    name,
    help,
    labelNames: ['pool'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of pools()) this.set({ pool: s.name }, value(s));
    },
  });
}

/**
 * A counter whose totals the pools keep, set from their stats at scrape time: one series per pool,
 * or with `by`, one per pool and key of the record `value` returns.
 */
function poolCounter(
  registry: Registry,
  pools: () => PoolStats[],
  name: string,
  help: string,
  value: (s: PoolStats) => number | Record<string, number>,
  by?: string,
): void {
  new Counter({
    name,
    help,
    labelNames: by ? ['pool', by] : ['pool'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of pools()) {
        const v = value(s);
        if (typeof v === 'number') this.inc({ pool: s.name }, v);
        else for (const [key, n] of Object.entries(v)) this.inc({ pool: s.name, [by!]: key }, n);
      }
    },
  });
}

/** The metrics route's OpenAPI path item. */
export function metricsOpenApi(): Record<string, Doc> {
  return {
    '/metrics': {
      get: {
        operationId: 'metrics',
        tags: ['service'],
        summary: 'Prometheus metrics',
        description: 'Requests, latency, queue depths, inference times, worker pools and process metrics in the Prometheus text format. Needs an API key when keys are on, unless CVSERVE_METRICS_PUBLIC is set.',
        responses: { '200': { description: 'The metrics.', content: { 'text/plain': { schema: { type: 'string' } } } }, '401': { $ref: '#/components/responses/Error401' } },
      },
    },
  };
}
