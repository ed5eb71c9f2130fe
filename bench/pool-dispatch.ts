/**
 * The measurement behind keeping src/engines/pool.ts instead of piscina (issue 13): the cost of
 * one task's round trip through each pool, side by side in one run, for a tiny task and for a
 * task carrying a transferred 4.5 MB buffer (a 1.5 MP RGB image). Run: node --import tsx bench/pool-dispatch.ts
 */
import { Piscina } from 'piscina';
import { WorkerPool } from '../src/engines/pool.js';

const TASK = new URL('./fixtures/dispatch-task.mjs', import.meta.url);
const ROUNDS = Number(process.argv[2] ?? 5);
const N = 4000;

type Runner = { name: string; run(task: Record<string, unknown>, transfer?: ArrayBuffer[]): Promise<unknown>; close(): Promise<void> };

async function measure(r: Runner, kind: 'echo' | 'buffer'): Promise<number> {
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    if (kind === 'echo') inFlight.push(r.run({ op: 'echo', value: i }));
    else {
      const data = new Uint8Array(4_500_000);
      inFlight.push(r.run({ op: 'buffer', data }, [data.buffer]));
    }
    if (inFlight.length >= 8) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  const cpu = process.cpuUsage(cpu0);
  void start;
  return (cpu.user + cpu.system) / 1000 / N; // main-thread + worker CPU ms per task
}

const own = new WorkerPool({ name: 'own', filename: TASK, size: 2, maxQueue: 64 });
await own.ready();
const ownRunner: Runner = { name: 'cvserve WorkerPool', run: (task, transfer) => own.run(task, { transferList: transfer }), close: () => own.close() };
const piscina = new Piscina({ filename: TASK.href, minThreads: 2, maxThreads: 2, maxQueue: 64 });
const piscinaRunner: Runner = { name: 'piscina 5', run: (task, transfer) => piscina.run(task, { transferList: transfer }), close: () => piscina.destroy() };

const rows: Record<string, { echo: number[]; buffer: number[] }> = { [ownRunner.name]: { echo: [], buffer: [] }, [piscinaRunner.name]: { echo: [], buffer: [] } };
for (let round = 0; round < ROUNDS; round++) {
  for (const r of round % 2 ? [piscinaRunner, ownRunner] : [ownRunner, piscinaRunner]) {
    rows[r.name]!.echo.push(await measure(r, 'echo'));
    rows[r.name]!.buffer.push(await measure(r, 'buffer'));
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
console.log(`CPU ms per task (process-wide, median of ${ROUNDS} alternating rounds of ${N} tasks, 8 in flight, 2 workers)`);
for (const [name, r] of Object.entries(rows)) console.log(`${name.padEnd(20)} echo ${median(r.echo).toFixed(3)}  4.5 MB transfer ${median(r.buffer).toFixed(3)}`);
await Promise.all([ownRunner.close(), piscinaRunner.close()]);
