import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parentPort, type Transferable } from 'node:worker_threads';
import { claimTask } from './task-claims.js';
import { unwrapTransfer } from './transfer.js';

/**
 * The entry of every pool worker thread. It imports the task module named by the pool, waits for
 * its optional `ready` promise, then runs tasks one at a time, in the order they arrived, through
 * the module's default export. A task may wait here behind the running one (the pool's prefetch):
 * before it starts, the worker claims it in shared memory, and skips it if the pool took it back.
 *
 * A task module may export:
 * - `default(task)`: the handler (required);
 * - `ready`: a promise settled once the worker can serve (e.g. OpenCV wasm loaded);
 * - `heapBytes()`: memory the module holds that never shrinks (a wasm heap), checked after each
 *   task against the pool's cap so the pool can retire the worker between tasks.
 */
interface TaskModule {
  default: (task: unknown) => unknown;
  ready?: PromiseLike<unknown>;
  heapBytes?: () => number;
}

export interface InitMessage {
  type: 'init';
  module: string;
  /** Retire after a task once heapBytes() exceeds this (0: never). */
  maxHeapBytes: number;
  /** The claim cells this worker shares with the pool (see TaskMessage.claim). */
  claims: SharedArrayBuffer;
}

export interface TaskMessage {
  type: 'task';
  id: number;
  task: unknown;
  /** The claim cell holding `id` while the task waits; the worker swaps in -id as it starts. */
  claim: number;
}


/** An error as it crosses the thread boundary: enough to rebuild an AppError or log the cause. */
export interface WorkerError {
  name: string;
  message: string;
  stack?: string;
  /** AppError code when the task threw one. */
  code?: string;
  publicMessage?: string;
}

export type WorkerReply =
  | { type: 'ready'; heapBytes: number }
  | { type: 'startup-failed'; error: WorkerError }
  | { type: 'result'; id: number; value: unknown; heapBytes: number; retire: boolean }
  | { type: 'error'; id: number; error: WorkerError; heapBytes: number; retire: boolean }
  | { type: 'skipped'; id: number; heapBytes: number };

const port = parentPort!;
let mod: TaskModule;
let maxHeapBytes = 0;
let claims: Int32Array;
const waiting: TaskMessage[] = [];
let draining = false;
/** Set once this worker told the pool to retire it: it takes no further task. */
let retiring = false;

function describe(err: unknown): WorkerError {
  if (err instanceof Error) {
    const e = err as Error & { code?: unknown; publicMessage?: unknown };
    return {
      name: e.name,
      message: e.message,
      stack: e.stack,
      code: e.name === 'AppError' && typeof e.code === 'string' ? e.code : undefined,
      publicMessage: e.name === 'AppError' && typeof e.publicMessage === 'string' ? e.publicMessage : undefined,
    };
  }
  return { name: typeof err, message: String(err) };
}

function heapBytes(): number {
  try {
    return mod?.heapBytes?.() ?? 0;
  } catch {
    return 0;
  }
}

/** Loads the task module: required when it is .ts (tsx's require hook works in workers, its module hooks do not). */
async function importTaskModule(href: string): Promise<TaskModule> {
  if (new URL(href).pathname.endsWith('.ts')) return createRequire(import.meta.url)(fileURLToPath(href)) as TaskModule;
  return (await import(href)) as TaskModule;
}

async function runTask(message: TaskMessage): Promise<void> {
  let reply: WorkerReply;
  let transfer: Transferable[] = [];
  try {
    const moved = unwrapTransfer(await mod.default(message.task));
    transfer = moved.transfer;
    const heap = heapBytes();
    reply = { type: 'result', id: message.id, value: moved.value, heapBytes: heap, retire: maxHeapBytes > 0 && heap > maxHeapBytes };
  } catch (err) {
    const heap = heapBytes();
    // A wasm trap (abort, out of memory, out-of-bounds access) leaves the module unusable: retire.
    const trapped = err instanceof WebAssembly.RuntimeError;
    reply = { type: 'error', id: message.id, error: describe(err), heapBytes: heap, retire: trapped || (maxHeapBytes > 0 && heap > maxHeapBytes) };
  }
  if (reply.retire) retiring = true;
  try {
    port.postMessage(reply, transfer);
  } catch (err) {
    // The result could not be cloned: report that instead of leaving the task hanging.
    port.postMessage({ type: 'error', id: message.id, error: describe(err), heapBytes: reply.heapBytes, retire: reply.retire } satisfies WorkerReply);
  }
}

/** Runs the waiting tasks in arrival order, one at a time. */
async function drain(): Promise<void> {
  draining = true;
  while (waiting.length > 0 && !retiring) {
    const message = waiting.shift()!;
    if (claimTask(claims, message.claim, message.id)) await runTask(message);
    else port.postMessage({ type: 'skipped', id: message.id, heapBytes: heapBytes() } satisfies WorkerReply);
  }
  draining = false;
}

port.on('message', (message: InitMessage | TaskMessage) => {
  if (message.type === 'task') {
    waiting.push(message);
    if (!draining) void drain();
    return;
  }
  maxHeapBytes = message.maxHeapBytes;
  claims = new Int32Array(message.claims);
  (async () => {
    mod = await importTaskModule(message.module);
    if (typeof mod.default !== 'function') throw new Error(`${message.module} has no default export function`);
    await mod.ready;
  })().then(
    () => port.postMessage({ type: 'ready', heapBytes: heapBytes() } satisfies WorkerReply),
    (err: unknown) => port.postMessage({ type: 'startup-failed', error: describe(err) } satisfies WorkerReply),
  );
});
