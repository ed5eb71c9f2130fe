import { readFileSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { feedFrom } from '../src/engines/onnx/free-dims.js';
import { sessionOptions } from '../src/engines/onnx/session-options.js';

/**
 * A pool worker for bench/kernels.ts's "at once" times: one session of one model, as the service's
 * workers open it, timing its own session.run calls in a loop. Several of these run their loops at
 * the same time, which is how the service's workers run under load.
 */

export interface KernelWorkerData {
  modelPath: string;
  shape: number[];
  threads: number;
  /** Fed past this tensor (YOLOX's Focus layer), as the manifest says. */
  feedFrom?: string;
}

export interface TimeTask {
  budgetMs: number;
  minIterations: number;
}

export interface WorkerTimes {
  /** session.run times, ms, in the order they ran. */
  times: number[];
}

const data = workerData as KernelWorkerData;

async function open(): Promise<{ session: ort.InferenceSession; feeds: Record<string, ort.Tensor> }> {
  const options = sessionOptions({ intraOpNumThreads: data.threads, memoryArena: true });
  const session = data.feedFrom
    ? await ort.InferenceSession.create(feedFrom(readFileSync(data.modelPath), data.feedFrom, data.shape), options)
    : await ort.InferenceSession.create(data.modelPath, options);
  const values = new Float32Array(data.shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = ((i * 7919) % 255) / 255; // as kernels.ts feeds its sessions
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', values, data.shape) };
  await session.run(feeds); // first-call allocations
  return { session, feeds };
}

const opened = open();
export const ready = opened;

export default async function time(task: TimeTask): Promise<WorkerTimes> {
  const { session, feeds } = await opened;
  await session.run(feeds);
  const times: number[] = [];
  const start = performance.now();
  while (times.length < task.minIterations || performance.now() - start < task.budgetMs) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
    if (times.length >= 200) break;
  }
  return { times };
}
