import { readFileSync } from 'node:fs';
import { threadId, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { packFeed } from '../../image/pack.js';
import { transferResult } from '../transfer.js';
import { textTask } from './text/worker-tasks.js';
import { feedFrom, freeModelDims } from './free-dims.js';
import { RunningCells } from './running-cells.js';
import { sessionOptions } from './session-options.js';
import { keepRows } from './rows.js';
import { tensorBuffers, type Feeds, type LoadResult, type OnnxTask, type OnnxWorkerData, type Outputs, type RunResult, type WarmupInput } from './protocol.js';

/**
 * One ONNX Runtime session per worker thread for this pool's model. Session creation and
 * session.run are synchronous native work, which is why they live here and not on the main thread.
 */
const data = workerData as OnnxWorkerData;

/**
 * The float tensors this worker packed, by input name, refilled by the next run of the same size:
 * tasks run one at a time here (pool-worker.ts) and ONNX Runtime reads a feed only during its run,
 * so the 2 MB of a 416x416 input are not allocated, zeroed and collected per run.
 */
const packed = new Map<string, Float32Array>();

function toOrt(feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const packing = data.packs?.[name];
    let values = t.data;
    if (packing && t.data instanceof Uint8Array) {
      values = packFeed(t.data, t.dims, packing, packed.get(name));
      packed.set(name, values);
    }
    out[name] = values instanceof Uint8Array ? new ort.Tensor('uint8', values, t.dims) : new ort.Tensor('float32', values, t.dims);
  }
  return out;
}

/** The model as ONNX Runtime gets it: the file's path, or its bytes with the declared input dims freed and fed where declared. */
function modelSource(): string | Uint8Array {
  if (!data.freeDims && !data.feedFrom) return data.modelPath;
  let bytes: Uint8Array = readFileSync(data.modelPath);
  if (data.freeDims) bytes = freeModelDims(bytes, data.freeDims);
  return data.feedFrom ? feedFrom(bytes, data.feedFrom.tensor, data.feedFrom.dims) : bytes;
}

function zeros(inputs: Record<string, WarmupInput>): Feeds {
  const feeds: Feeds = {};
  for (const [name, w] of Object.entries(inputs)) {
    const size = w.dims.reduce((a, b) => a * b, 1);
    feeds[name] = { data: w.dtype === 'uint8' ? new Uint8Array(size) : new Float32Array(size), dims: w.dims };
  }
  return feeds;
}

async function createSession(source: string | Uint8Array, intraOpNumThreads: number): Promise<ort.InferenceSession> {
  const options = sessionOptions({ ...data, intraOpNumThreads });
  const s = typeof source === 'string' ? await ort.InferenceSession.create(source, options) : await ort.InferenceSession.create(source, options);
  for (const inputs of [data.warmup, ...(data.extraWarmups ?? [])]) await s.run(toOrt(zeros(inputs)));
  return s;
}

function toFloat32(t: ort.Tensor): Float32Array {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (typeof d === 'string' || (Array.isArray(d) && typeof d[0] === 'string')) throw new Error(`output of type ${t.type} is not numeric`);
  const out = new Float32Array(t.size);
  for (let i = 0; i < out.length; i++) out[i] = Number((d as ArrayLike<number | bigint>)[i]);
  return out;
}

// The sessions are created (and warmed up) as the worker starts; the pool waits for `ready`.
const started = performance.now();
let loadMs = 0;
const running = data.running ? new RunningCells(data.running.cells, data.running.slot) : undefined;
// The engine sends busyThreads only where it is below intraOpNumThreads, with the cells.
const busyThreads = running ? data.busyThreads : undefined;
const sessions = (async () => {
  const source = modelSource();
  const lone = await createSession(source, data.intraOpNumThreads);
  const busy = busyThreads === undefined ? lone : await createSession(source, busyThreads);
  loadMs = performance.now() - started;
  return { lone, busy };
})();
const session = sessions.then((s) => s.lone);
session.catch(() => {}); // reported through `ready` and every task, never as an unhandled rejection
export const ready = session;

async function load(): Promise<LoadResult> {
  await session;
  return { loadMs, threadId };
}

/**
 * A lone run gets all the session's threads (a single request is fast); one that starts while
 * another worker runs, or within the model's last few starts after one did (running-cells.ts),
 * gets the busy session's (one thread each: two runs at once on two cores cost less CPU than two
 * turns of a two-thread run, which is what throughput under load is made of).
 */
async function run(task: Extract<OnnxTask, { op: 'run' }>): Promise<unknown> {
  const { lone, busy } = await sessions;
  const s = running?.enter() ? busy : lone;
  const t0 = performance.now();
  let results: ort.InferenceSession.ReturnType;
  try {
    results = await s.run(toOrt(task.feeds), task.outputs ?? s.outputNames);
  } finally {
    running?.exit();
  }
  const runMs = performance.now() - t0;
  const outputs: Outputs = {};
  for (const [name, t] of Object.entries(results)) {
    const whole = { data: toFloat32(t), dims: [...t.dims] };
    outputs[name] = task.keepRows?.output === name ? keepRows(whole, task.keepRows) : whole;
  }
  const result: RunResult = { outputs, runMs, threads: s === lone ? data.intraOpNumThreads : busyThreads! };
  // The largest output buffer moves instead of being copied; small ones (scores, counts) are cloned.
  const largest = tensorBuffers(outputs).sort((a, b) => b.byteLength - a.byteLength)[0];
  return largest ? transferResult(result, [largest]) : result;
}

export default async function handle(task: OnnxTask): Promise<unknown> {
  switch (task.op) {
    case 'load':
      return load();
    case 'run':
      return run(task);
    case 'text-detect':
    case 'text-recognize':
      return textTask(await session, data, task);
    default:
      throw new Error(`unknown ONNX op ${(task as { op: string }).op}`);
  }
}
