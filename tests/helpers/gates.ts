import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import { OnnxEngine } from '../../src/engines/onnx/engine.js';
import type { Box, DetectOptions } from '../../src/engines/opencv/protocol.js';
import { WorkerPool, type PoolStats } from '../../src/engines/pool.js';
import { DecodeBudget } from '../../src/image/decode-memory.js';
import type { RawImage } from '../../src/image/types.js';
import { ModelStore } from '../../src/models/store.js';
import type { AnyResource, ServiceSet } from '../../src/resources/contract.js';
import type { FixtureTask } from '../engines/fixtures/pool-task.js';
import { createTestApp } from './app.js';
import { MODELS_DIR } from './paths.js';

/**
 * Work that lasts exactly as long as the test wants: stand-ins that wait until the test opens
 * their gate, so "a request still running", "a busy worker", "work that outlasts the deadline"
 * are states the test creates, never races it hopes to win.
 */

/** A gate on the main thread: `pass()` waits until the test calls `open()`. */
export class Gate {
  /** Calls that reached the gate. */
  entered = 0;
  /** Calls whose signal aborted while they waited. */
  aborted = 0;
  private opened = false;
  private readonly openWaiters: (() => void)[] = [];
  private readonly enterWaiters: { n: number; resolve: () => void }[] = [];

  /** Waits for the gate to open; resolves with this call's number (1, 2, ...). */
  async pass(signal?: AbortSignal): Promise<number> {
    const n = ++this.entered;
    for (const w of this.enterWaiters.filter((w) => w.n <= n)) {
      this.enterWaiters.splice(this.enterWaiters.indexOf(w), 1);
      w.resolve();
    }
    if (signal?.aborted) this.aborted++;
    else signal?.addEventListener('abort', () => this.aborted++, { once: true });
    if (!this.opened) await new Promise<void>((resolve) => this.openWaiters.push(resolve));
    return n;
  }

  /** Resolves once `n` calls have reached the gate. */
  whenEntered(n = 1): Promise<void> {
    if (this.entered >= n) return Promise.resolve();
    return new Promise((resolve) => this.enterWaiters.push({ n, resolve }));
  }

  open(): void {
    this.opened = true;
    for (const resolve of this.openWaiters.splice(0)) resolve();
  }
}

/** A JSON resource whose run waits at `gate`: the request stays in flight until the test opens it. */
export function gateResource(gate: Gate, name = 'gate'): AnyResource {
  return {
    name,
    summary: 'waits until the test opens its gate',
    params: z.strictObject({}),
    output: { kind: 'json', schema: z.object({ passed: z.number() }) },
    async init() {},
    status: () => ({ ready: true }),
    async run(_input, _params, ctx) {
      return { kind: 'json', body: { passed: await gate.pass(ctx.signal) } };
    },
    async close() {},
  };
}

const waitAsync = (Atomics as unknown as {
  waitAsync(view: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/**
 * Gates for work inside worker threads: a task of the fixture pool (`op: 'hold'`) blocks its whole
 * thread, as wasm work does, until the test opens its gate. Shared memory carries both signals, so
 * "the worker has started this task" is known exactly, without polling.
 */
export class WorkerGates {
  readonly cells: SharedArrayBuffer;
  private readonly view: Int32Array;
  private next = 0;

  constructor(readonly capacity = 64) {
    this.cells = new SharedArrayBuffer(capacity * 2 * Int32Array.BYTES_PER_ELEMENT);
    this.view = new Int32Array(this.cells);
  }

  /** A task holding a fresh gate, and that gate's index. */
  task(): { task: FixtureTask; index: number } {
    if (this.next >= this.capacity) throw new Error('out of worker gates');
    const index = this.next++;
    return { task: { op: 'hold', cells: this.cells, index }, index };
  }

  isEntered(index: number): boolean {
    return Atomics.load(this.view, index * 2) === 1;
  }

  /** Resolves once a worker runs the task of gate `index`. */
  async entered(index: number): Promise<void> {
    while (!this.isEntered(index)) {
      const wait = waitAsync(this.view, index * 2, 0);
      if (wait.async) await wait.value;
    }
  }

  open(index: number): void {
    Atomics.store(this.view, index * 2 + 1, 1);
    Atomics.notify(this.view, index * 2 + 1);
  }

  /** Opens every gate handed out so far. */
  openAll(): void {
    for (let i = 0; i < this.next; i++) this.open(i);
  }
}

const POOL_TASK = new URL('../engines/fixtures/pool-task.ts', import.meta.url);

/** A real WorkerPool on the fixture task module (op `hold` and the others of tests/engines/fixtures/pool-task.ts). */
export function fixturePool(options: { name?: string; size?: number; maxQueue?: number; workerData?: unknown; maxHeapBytes?: number; filename?: URL }): WorkerPool {
  return new WorkerPool({ name: options.name ?? 'fixture', filename: options.filename ?? POOL_TASK, size: options.size ?? 1, maxQueue: options.maxQueue ?? 4, workerData: options.workerData, maxHeapBytes: options.maxHeapBytes });
}

/**
 * The OpenCV engine's part an HTTP test needs, on a real WorkerPool whose every task holds its
 * worker until the test opens that call's gate; then Canny answers a blank edge map and detection
 * no boxes. Everything from the route to the pool (queue bound, drops, 503, metrics) is the real
 * code; only how long the work takes is the test's.
 */
export class HeldOpenCv {
  readonly gates = new WorkerGates();
  readonly pool: WorkerPool;
  /** Gate index of each call, in the order calls arrived. */
  readonly calls: number[] = [];
  private readonly arrivals: { n: number; resolve: () => void }[] = [];

  constructor(options: { size: number; maxQueue: number }) {
    this.pool = fixturePool({ name: 'opencv', size: options.size, maxQueue: options.maxQueue });
  }

  /** Resolves once `n` calls have reached the engine (queued or running). */
  whenCalled(n: number): Promise<void> {
    if (this.calls.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.arrivals.push({ n, resolve }));
  }

  /** Resolves with the gate of call `i` (0-based) once its task runs on a worker. */
  async running(i: number): Promise<number> {
    await this.whenCalled(i + 1);
    await this.gates.entered(this.calls[i]!);
    return this.calls[i]!;
  }

  private holding = true;

  /** Opens the gate of call `i`. */
  release(i: number): void {
    this.gates.open(this.calls[i]!);
  }

  /** Releases every call so far, and lets later calls through without holding them. */
  letThrough(): void {
    this.holding = false;
    this.gates.openAll();
  }

  private async hold(signal?: AbortSignal): Promise<void> {
    const { task, index } = this.gates.task();
    if (!this.holding) this.gates.open(index);
    this.calls.push(index);
    for (const a of this.arrivals.filter((a) => a.n <= this.calls.length)) {
      this.arrivals.splice(this.arrivals.indexOf(a), 1);
      a.resolve();
    }
    await this.pool.run(task, { signal });
  }

  async canny(image: RawImage, _threshold1: number, _threshold2: number, signal?: AbortSignal): Promise<RawImage> {
    await this.hold(signal);
    return { data: new Uint8Array(image.width * image.height), width: image.width, height: image.height, channels: 1 };
  }

  async detect(_image: RawImage, _options: DetectOptions, signal?: AbortSignal): Promise<Box[]> {
    await this.hold(signal);
    return [];
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  async close(): Promise<void> {
    this.letThrough();
    await this.pool.close();
  }
}

/** An app whose OpenCV engine is a HeldOpenCv (the ONNX engine idle, the model store real). */
export async function appWithHeldOpenCv(
  overrides: Partial<Config>,
  options: { resources: AnyResource[]; size?: number; maxQueue?: number },
): Promise<{ svc: CvServe; opencv: HeldOpenCv; close(): Promise<void> }> {
  const config = testConfig({ modelsDir: MODELS_DIR, modelsFetch: false, ...overrides });
  const opencv = new HeldOpenCv({ size: options.size ?? 1, maxQueue: options.maxQueue ?? 1 });
  await opencv.pool.ready();
  const onnx = new OnnxEngine({ workers: 1, threads: 1, maxQueue: 1, modelsDir: MODELS_DIR });
  const models = ModelStore.fromConfig(config);
  const engines = { opencv, onnx, models, decodeBudget: new DecodeBudget(config.decodeMemoryBytes) } as unknown as ServiceSet;
  const svc = await createTestApp(overrides, { resources: options.resources, engines });
  return {
    svc,
    opencv,
    async close() {
      await svc.close();
      await Promise.all([models.close(), opencv.close(), onnx.close()]);
    },
  };
}
