import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, describe, it } from 'node:test';
import { OpenCvEngine } from '../../src/engines/opencv/engine.js';
import { TASK_CHANNEL, WORKER_CHANNEL, WorkerPool, type TaskEvent, type WorkerEvent } from '../../src/engines/pool.js';
import { AppError } from '../../src/errors.js';
import { jpegAddon } from '../../src/image/jpeg-decoder.js';
import type { FixtureTask } from './fixtures/pool-task.js';
import { WorkerGates } from '../helpers/gates.js';
import { until } from '../helpers/wait.js';
import { MODELS_DIR } from '../helpers/paths.js';

const FIXTURE = new URL('./fixtures/pool-task.ts', import.meta.url);
const BROKEN = new URL('./fixtures/broken-task.ts', import.meta.url);

const pools: WorkerPool[] = [];
function pool(options: { size?: number; maxQueue?: number; maxHeapBytes?: number; filename?: URL; workerData?: unknown; prefetch?: number; heldBuffers?: 'copy' | 'transfer' } = {}): WorkerPool {
  const p = new WorkerPool({ name: 'fixture', filename: options.filename ?? FIXTURE, size: options.size ?? 1, maxQueue: options.maxQueue ?? 4, ...options });
  pools.push(p);
  return p;
}
after(() => Promise.all(pools.map((p) => p.close())));

const run = <T = Record<string, unknown>>(p: WorkerPool, task: FixtureTask, signal?: AbortSignal) => p.run<T>(task, { signal });

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<AppError> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
  assert.equal(err.code, code);
  return err;
}

describe('WorkerPool', () => {
  it('runs tasks on its workers and counts them', async () => {
    const p = pool({ size: 2 });
    await p.ready();
    const results = await Promise.all([1, 2, 3, 4].map((value) => run(p, { op: 'echo', value })));
    assert.deepEqual(results.map((r) => r.value), [1, 2, 3, 4]);
    const stats = p.stats();
    assert.equal(stats.completed, 4);
    assert.equal(stats.workers, 2);
    assert.equal(stats.up, true);
    assert.equal(stats.running, 0);
    assert.equal(stats.heapBytes, 2048); // both workers report the fixture's 1 KiB heap
  });

  it('refuses with QUEUE_FULL and Retry-After when the queue is full, and serves again once drained', async () => {
    const p = pool({ size: 1, maxQueue: 2 });
    await p.ready();
    const accepted = [run(p, { op: 'sleep', ms: 300 }), run(p, { op: 'sleep', ms: 10 }), run(p, { op: 'sleep', ms: 10 })];
    assert.deepEqual([p.stats().running, p.stats().queued], [1, 2]);
    const err = await rejectsWith(run(p, { op: 'echo', value: 'x' }), 'QUEUE_FULL');
    assert.equal(err.status, 503);
    assert.equal(err.headers['Retry-After'], '1');
    assert.equal(p.stats().rejected, 1);
    await Promise.all(accepted);
    assert.equal((await run(p, { op: 'echo', value: 'after' })).value, 'after');
  });

  it('drops a queued task whose caller aborts, and does not wait for a running one', async () => {
    const p = pool({ size: 1, maxQueue: 4 });
    await p.ready();
    const gates = new WorkerGates();
    const held = gates.task();
    const running = new AbortController();
    const queued = new AbortController();
    const first = p.run(held.task, { signal: running.signal });
    const second = run(p, { op: 'echo', value: 'never' }, queued.signal);
    assert.equal(p.stats().queued, 1);
    queued.abort(new Error('client left'));
    await assert.rejects(second, /client left/);
    assert.equal(p.stats().queued, 0);
    assert.equal(p.stats().dropped, 1);
    await gates.entered(held.index);
    running.abort(new Error('deadline'));
    await assert.rejects(first, /deadline/);
    assert.equal(p.stats().running, 1, 'the caller was released while its task still holds the worker');
    // The worker finishes its task before taking the next one; nothing was lost or duplicated.
    const next = run(p, { op: 'echo', value: 'next' });
    gates.open(held.index);
    assert.equal((await next).value, 'next');
    assert.deepEqual([p.stats().completed, p.stats().dropped], [2, 1]);
  });

  it('fails only the task of a worker that exits, and replaces the worker', async () => {
    const p = pool({ size: 2, maxQueue: 4 });
    await p.ready();
    const bystander = run(p, { op: 'sleep', ms: 200 });
    const err = await rejectsWith(run(p, { op: 'exit' }), 'ENGINE_FAILED');
    assert.equal(err.status, 503);
    assert.equal(err.headers['Retry-After'], '1');
    assert.match(err.detail ?? '', /worker died: worker exited with code 3/);
    assert.equal((await bystander).slept, 200);
    const after = await Promise.all([1, 2, 3].map((value) => run(p, { op: 'echo', value })));
    assert.deepEqual(after.map((r) => r.value), [1, 2, 3]);
    assert.equal(p.stats().crashed, 1);
    await until(() => p.stats().workers === 2, 'the replacement worker starts');
  });

  it('fails the task of a worker killed by an uncaught exception', async () => {
    const p = pool({ size: 1 });
    await p.ready();
    const crashing = run(p, { op: 'uncaught' });
    const queuedBehind = run(p, { op: 'echo', value: 'behind' });
    const err = await rejectsWith(crashing, 'ENGINE_FAILED');
    assert.match(err.detail ?? '', /boom outside the task/);
    assert.equal((await queuedBehind).value, 'behind');
    assert.equal(p.stats().crashed, 1);
    assert.equal((await run(p, { op: 'echo', value: 'again' })).value, 'again');
  });

  it('maps a task error to INTERNAL, and an AppError thrown in the worker to its own code', async () => {
    const p = pool();
    await p.ready();
    const plain = await rejectsWith(run(p, { op: 'throw' }), 'INTERNAL');
    assert.match(plain.detail ?? '', /plain failure/);
    assert.equal(plain.publicMessage, 'Internal server error');
    const app = await rejectsWith(run(p, { op: 'app-error' }), 'UNDECODABLE_IMAGE');
    assert.equal(app.status, 422);
    assert.equal(app.publicMessage, 'fixture could not decode');
    assert.equal(p.stats().retired, 0, 'ordinary errors keep the worker');
  });

  it('retires a worker whose heap passed the cap after answering, without losing queued tasks', async () => {
    const p = pool({ size: 1, maxQueue: 8, maxHeapBytes: 1 << 20 });
    await p.ready();
    const { threadId: before } = await run(p, { op: 'thread' });
    const events: WorkerEvent[] = [];
    const onEvent = (m: unknown) => events.push(m as WorkerEvent);
    diagnostics.subscribe(WORKER_CHANNEL, onEvent);
    try {
      // The growing task and five tasks queued behind it: the grower answers, then its worker leaves.
      const grow = run(p, { op: 'grow', bytes: 2 << 20 });
      const behind = [1, 2, 3, 4, 5].map((value) => run(p, { op: 'echo', value }));
      assert.equal((await grow).heap, 2 << 20);
      const rest = await Promise.all(behind);
      assert.deepEqual(rest.map((r) => r.value), [1, 2, 3, 4, 5]);
      assert.ok(rest.every((r) => r.threadId !== before), 'queued tasks ran on the fresh worker');
      const stats = p.stats();
      assert.deepEqual([stats.retired, stats.crashed, stats.failed, stats.completed], [1, 0, 0, 7]);
      assert.equal(stats.heapBytes, 1024, 'the fresh worker starts small');
      assert.deepEqual(events.filter((e) => e.poolId === p.id).map((e) => e.event), ['retired']);
    } finally {
      diagnostics.unsubscribe(WORKER_CHANNEL, onEvent);
    }
  });

  it('retires a worker whose module trapped (wasm RuntimeError), failing only that task', async () => {
    const p = pool({ size: 1 });
    await p.ready();
    const { threadId: before } = await run(p, { op: 'thread' });
    await rejectsWith(run(p, { op: 'trap' }), 'ENGINE_FAILED');
    const { threadId: afterTrap } = await run(p, { op: 'thread' });
    assert.notEqual(afterTrap, before);
    assert.equal(p.stats().retired, 1);
  });

  it('reports a worker that cannot start, and is not up', async () => {
    const p = pool({ filename: BROKEN });
    await assert.rejects(p.ready(), /fixture refuses to start/);
    const stats = p.stats();
    assert.equal(stats.up, false);
    assert.match(stats.startupError ?? '', /fixture refuses to start/);
  });

  it('fails queued work, naming why, when no worker of the pool can start (no task waits forever)', { timeout: 60_000 }, async () => {
    const p = pool({ filename: BROKEN, size: 2 });
    const queued = [run(p, { op: 'thread' }), run(p, { op: 'thread' })];
    for (const task of queued) {
      await assert.rejects(task, (err: { code?: string; detail?: string }) => err.code === 'ENGINE_FAILED' && /failed to start: .*fixture refuses to start/.test(err.detail ?? ''));
    }
    assert.equal(p.stats().failed, 2);
  });

  it('waits for slow workers to start before running tasks, and queues meanwhile', async () => {
    const p = pool({ size: 1, maxQueue: 0, workerData: { startupMs: 200 } });
    assert.equal(p.stats().up, false);
    // maxQueue 0 still lets `size` tasks in: they wait for the starting worker.
    const first = run(p, { op: 'echo', value: 1 });
    await rejectsWith(run(p, { op: 'echo', value: 2 }), 'QUEUE_FULL');
    assert.equal((await first).value, 1);
    assert.equal(p.stats().up, true);
  });

  it('publishes task timings with the op name', async () => {
    const p = pool();
    await p.ready();
    const events: TaskEvent[] = [];
    const onTask = (m: unknown) => events.push(m as TaskEvent);
    diagnostics.subscribe(TASK_CHANNEL, onTask);
    const started = performance.now();
    try {
      await run(p, { op: 'sleep', ms: 50 });
      await rejectsWith(run(p, { op: 'throw' }), 'INTERNAL');
    } finally {
      diagnostics.unsubscribe(TASK_CHANNEL, onTask);
    }
    const elapsed = (performance.now() - started) / 1000;
    const own = events.filter((e) => e.poolId === p.id);
    assert.deepEqual(own.map((e) => [e.pool, e.op, e.ok]), [['fixture', 'sleep', true], ['fixture', 'throw', false]]);
    // A timer never fires early, and the pool measures inside the span the test measured.
    assert.ok(own[0]!.seconds >= 0.04 && own[0]!.seconds <= elapsed, `sleep took ${own[0]!.seconds} s of ${elapsed} s`);
    assert.ok(p.stats().busySeconds >= 0.04 && p.stats().busySeconds <= elapsed);
  });

  it('on close lets a running task finish, fails what was queued with SHUTTING_DOWN and refuses new work', async () => {
    const p = pool({ size: 1, maxQueue: 2 });
    await p.ready();
    const gates = new WorkerGates();
    const held = gates.task();
    const running = p.run<{ held: number }>(held.task);
    const queued = rejectsWith(run(p, { op: 'echo', value: 1 }), 'SHUTTING_DOWN');
    await gates.entered(held.index);
    let closed = false;
    const closing = p.close().then(() => (closed = true));
    await queued;
    await rejectsWith(run(p, { op: 'echo', value: 2 }), 'SHUTTING_DOWN');
    assert.equal(closed, false, 'close waits for the running task');
    gates.open(held.index);
    await closing;
    assert.equal((await running).held, held.index);
    assert.equal(p.stats().up, false);
  });

  it('on close fails a running task that outlasts the grace period', { timeout: 60_000 }, async () => {
    const p = pool({ size: 1, maxQueue: 2 });
    await p.ready();
    const gates = new WorkerGates();
    const held = gates.task();
    const running = rejectsWith(p.run(held.task), 'SHUTTING_DOWN');
    await gates.entered(held.index);
    // The gate is never opened: had close waited for the task, it would never return.
    await p.close(20);
    await running;
    assert.deepEqual([p.stats().up, p.stats().workers], [false, 0]);
  });
});

// The bounds here only turn a hang (a held task that never moves) into a failure.
describe('WorkerPool with prefetch', { timeout: 600_000 }, () => {
  it('hands a busy worker its next task, which starts while the main thread is blocked', async () => {
    const p = pool({ size: 1, prefetch: 1 });
    await p.ready();
    const gates = new WorkerGates();
    const first = gates.task();
    const second = gates.task();
    const done = [p.run(first.task), p.run(second.task)];
    await gates.entered(first.index);
    assert.deepEqual([p.stats().running, p.stats().queued], [2, 0], 'the second task is on the worker, not queued');
    gates.open(first.index);
    // The main thread waits here without running its event loop: only the worker can start the task.
    const cells = new Int32Array(gates.cells);
    Atomics.wait(cells, second.index * 2, 0, 600_000);
    assert.equal(gates.isEntered(second.index), true, 'the worker started its held task by itself');
    gates.open(second.index);
    await Promise.all(done);
    assert.equal(p.stats().completed, 2);
  });

  it('takes a held task back when its caller aborts: the worker skips it', async () => {
    const p = pool({ size: 1, prefetch: 1 });
    await p.ready();
    const gates = new WorkerGates();
    const first = gates.task();
    const held = gates.task();
    const leaving = new AbortController();
    const running = p.run(first.task);
    const abandoned = p.run(held.task, { signal: leaving.signal });
    await gates.entered(first.index);
    leaving.abort(new Error('client left'));
    await assert.rejects(abandoned, /client left/);
    assert.equal(p.stats().dropped, 1);
    gates.open(first.index);
    await running;
    // Had the worker run the abandoned task it would still hold its closed gate, and this could not answer.
    assert.equal((await run(p, { op: 'echo', value: 'next' })).value, 'next');
    assert.equal(gates.isEntered(held.index), false);
    assert.deepEqual([p.stats().completed, p.stats().running], [2, 0]);
  });

  it('moves a held task, its transferred buffer intact, to a worker that falls idle', async () => {
    const p = pool({ size: 2, prefetch: 1 });
    await p.ready();
    const gates = new WorkerGates();
    const long = gates.task();
    const short = gates.task();
    const longRun = p.run<{ threadId: number }>(long.task);
    const shortRun = p.run<{ threadId: number }>(short.task);
    await Promise.all([gates.entered(long.index), gates.entered(short.index)]);
    const bytes = new Uint8Array([1, 2, 3, 250]);
    const moved = p.run<{ value: Uint8Array; threadId: number }>({ op: 'echo', value: bytes }, { transferList: [bytes.buffer] });
    assert.deepEqual([p.stats().running, p.stats().queued], [3, 0]);
    // Whichever worker holds it, the other one freeing up takes it over while the long task still runs.
    gates.open(short.index);
    const { threadId: freed } = await shortRun;
    const answer = await moved;
    assert.deepEqual([...answer.value], [1, 2, 3, 250]);
    assert.equal(answer.threadId, freed);
    assert.equal(gates.isEntered(long.index) && p.stats().running, 1, 'the long task still holds its worker');
    gates.open(long.index);
    await longRun;
  });

  it('sends a held task to the replacement of a worker retired at the heap cap', async () => {
    const p = pool({ size: 1, prefetch: 1, maxHeapBytes: 1 << 20 });
    await p.ready();
    const gates = new WorkerGates();
    const first = gates.task();
    const running = p.run(first.task);
    await gates.entered(first.index);
    const growing = run(p, { op: 'grow', bytes: 2 << 20 });
    const behind = run<{ threadId: number }>(p, { op: 'thread' });
    gates.open(first.index);
    const [{ threadId: retiredThread }, { threadId: next }] = await Promise.all([growing, behind]);
    await running;
    assert.notEqual(next, retiredThread, 'the task behind ran on the new worker');
    assert.deepEqual([p.stats().retired, p.stats().failed], [1, 0]);
  });

  it('fails only the running task of a worker that dies; the held one runs on its replacement', async () => {
    const p = pool({ size: 1, prefetch: 1 });
    await p.ready();
    const crashing = run(p, { op: 'uncaught' });
    const held = run(p, { op: 'echo', value: 'held' });
    assert.deepEqual([p.stats().running, p.stats().queued], [2, 0]);
    await rejectsWith(crashing, 'ENGINE_FAILED');
    assert.equal((await held).value, 'held');
    assert.deepEqual([p.stats().crashed, p.stats().failed, p.stats().completed], [1, 1, 1]);
  });

  it('on close fails a held task that has not started, as queued work, and lets the running one finish', async () => {
    const p = pool({ size: 1, prefetch: 1 });
    await p.ready();
    const gates = new WorkerGates();
    const first = gates.task();
    const second = gates.task();
    const running = p.run<{ held: number }>(first.task);
    const held = rejectsWith(p.run(second.task), 'SHUTTING_DOWN');
    await gates.entered(first.index);
    assert.equal(p.stats().running, 2);
    const closing = p.close();
    await held;
    gates.open(first.index);
    await closing;
    assert.equal((await running).held, first.index);
    assert.equal(gates.isEntered(second.index), false, 'the held task never ran');
  });

  it('with heldBuffers transfer, moves a held task\'s buffer to its worker at once (no copy), intact', async () => {
    const p = pool({ size: 1, prefetch: 1, heldBuffers: 'transfer' });
    await p.ready();
    const gates = new WorkerGates();
    const first = gates.task();
    const running = p.run(first.task);
    await gates.entered(first.index);
    const bytes = new Uint8Array([1, 2, 3, 250]);
    const held = p.run<{ value: Uint8Array }>({ op: 'echo', value: bytes }, { transferList: [bytes.buffer] });
    assert.deepEqual([p.stats().running, p.stats().queued], [2, 0], 'the task is held by the worker');
    assert.equal(bytes.buffer.byteLength, 0, 'the buffer left the main thread');
    gates.open(first.index);
    await running;
    assert.deepEqual([...(await held).value], [1, 2, 3, 250]);
  });

  it('with heldBuffers transfer, a held task stays with its worker when another falls idle', async () => {
    const p = pool({ size: 2, prefetch: 1, heldBuffers: 'transfer' });
    await p.ready();
    const gates = new WorkerGates();
    const long = gates.task();
    const short = gates.task();
    const longRun = p.run<{ threadId: number }>(long.task);
    const shortRun = p.run<{ threadId: number }>(short.task);
    await Promise.all([gates.entered(long.index), gates.entered(short.index)]);
    // Both workers hold one task: the first of them, which runs `long`, gets this one.
    const bytes = new Uint8Array([9]);
    let heldDone = false;
    const heldRun = p.run<{ threadId: number }>({ op: 'echo', value: bytes }, { transferList: [bytes.buffer] }).finally(() => (heldDone = true));
    gates.open(short.index);
    const { threadId: freed } = await shortRun;
    // Had the held task moved to the freed worker, it would have answered before this probe.
    assert.equal((await run<{ threadId: number }>(p, { op: 'thread' })).threadId, freed, 'the idle worker takes new work');
    assert.equal(heldDone, false, 'the held task waits for its own worker');
    gates.open(long.index);
    const { threadId: longThread } = await longRun;
    assert.equal((await heldRun).threadId, longThread);
  });

  it('with heldBuffers transfer, fails a held task with ENGINE_FAILED when its worker dies first, and serves on', async () => {
    const p = pool({ size: 1, prefetch: 1, heldBuffers: 'transfer' });
    await p.ready();
    const crashing = run(p, { op: 'uncaught' });
    const bytes = new Uint8Array([7]);
    const held = p.run({ op: 'echo', value: bytes }, { transferList: [bytes.buffer] });
    await rejectsWith(crashing, 'ENGINE_FAILED');
    await rejectsWith(held, 'ENGINE_FAILED');
    assert.equal((await run(p, { op: 'echo', value: 'after' })).value, 'after');
    assert.deepEqual([p.stats().crashed, p.stats().failed], [1, 2]);
  });

  it('refuses a prefetch it cannot honour', () => {
    assert.throws(() => pool({ prefetch: 9 }), /prefetch must be an integer from 0 to 8/);
  });
});

describe('OpenCV engine heap cap', () => {
  it('replaces a worker whose wasm heap grew past the cap on a large image, and keeps serving', async () => {
    // OpenCV's heap starts at 128 MiB and doubles as needed: a 4500x3500 Canny in OpenCV.js takes it
    // to 256 MiB (the addon's Canny, the default, leaves the heap alone: the next test).
    const engine = new OpenCvEngine({ workers: 1, maxQueue: 4, modelsDir: MODELS_DIR, maxHeapBytes: 128 * 1024 * 1024, canny: 'opencv' });
    try {
      // Left half dark, right half light: one vertical edge per row.
      const width = 4500;
      const height = 3500;
      const data = new Uint8Array(width * height * 3).fill(220);
      for (let y = 0; y < height; y++) data.fill(40, y * width * 3, (y * width + width / 2) * 3);
      const big = { data, width, height, channels: 3 as const };
      const small = { data: new Uint8Array(64 * 48 * 3).fill(90), width: 64, height: 48, channels: 3 as const };
      const before = engine.stats();
      assert.equal(before.retired, 0);
      const [edges, next] = await Promise.all([engine.canny(big, 100, 200), engine.canny(small, 100, 200)]);
      assert.deepEqual([edges.width, edges.height, edges.channels], [4500, 3500, 1]);
      assert.equal(edges.data[1000 * width + width / 2 - 1]! + edges.data[1000 * width + width / 2]!, 255, 'the edge is found');
      assert.deepEqual([next.width, next.height], [64, 48]);
      const stats = engine.stats();
      assert.equal(stats.retired, 1);
      assert.equal(stats.failed, 0);
      assert.equal(stats.maxWorkerHeapBytes, 128 * 1024 * 1024, 'the replacement worker is back at the initial heap');
    } finally {
      await engine.close();
    }
  });

  it('the addon\'s Canny of the same image leaves the wasm heap where it was: no worker is replaced', { skip: jpegAddon()?.cannySync ? false : 'the addon is not built' }, async () => {
    const engine = new OpenCvEngine({ workers: 1, maxQueue: 4, modelsDir: MODELS_DIR, maxHeapBytes: 128 * 1024 * 1024, canny: 'native' });
    try {
      const width = 4500;
      const height = 3500;
      const data = new Uint8Array(width * height * 3).fill(220);
      for (let y = 0; y < height; y++) data.fill(40, y * width * 3, (y * width + width / 2) * 3);
      const edges = await engine.canny({ data, width, height, channels: 3 }, 100, 200);
      assert.equal(edges.data[1000 * width + width / 2 - 1]! + edges.data[1000 * width + width / 2]!, 255, 'the edge is found');
      const stats = engine.stats();
      assert.deepEqual([stats.retired, stats.failed, stats.maxWorkerHeapBytes], [0, 0, 128 * 1024 * 1024]);
    } finally {
      await engine.close();
    }
  });
});
