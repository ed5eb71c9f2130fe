import type { LoadResult } from './load.js';

/**
 * The bench's table: one line per scenario and target. With several rounds of a row (`--rounds`),
 * each line holds the target's medians, and each ratio is taken round by round (cvserve against the
 * peer and the baseline that ran next to it, against the kernel timed next to it) before its median
 * and range are shown: on this noisy machine a ratio of two medians from different minutes says
 * less than the median of ratios measured side by side.
 */

/** A row's kernel-bound limit (req/s), and the same with the workers' kernels timed at once where they were. */
export interface RowLimit {
  limit: number;
  atOnce?: number;
}

export interface Row extends LoadResult {
  scenario: string;
  target: string;
  peakRssMb: number;
  /** Server CPU time (all its threads and processes) per answered request, during the run: noise-resistant. */
  cpuMsPerReq: number;
  /** One answer, for checking that the servers agree. */
  answer: string;
  /** Which round of the row this was (0 first); absent in reports written before rounds. */
  round?: number;
  /** cvserve's kernel-bound limit from its kernel timed next to this round, where it was. */
  limit?: RowLimit;
}

export const BASELINE_NAME = 'cvserve-before';

export const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-');

export function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

/** "77% of 143.9", and "(80% of 138.0 at once)" where the workers' kernels were also timed together. */
export function percentOfLimit(rps: number, limit: RowLimit): string {
  const of = (l: number) => `${fmt((100 * rps) / l, 0)}% of ${fmt(l, 1)}`;
  return limit.atOnce ? `${of(limit.limit)} (${of(limit.atOnce)} at once)` : of(limit.limit);
}

/** A per-round figure as its median, with the range where there was more than one round. */
function spread(values: number[], show: (v: number) => string): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length <= 1) return show(finite[0] ?? Number.NaN);
  return `${show(median(finite))} (${show(Math.min(...finite))}-${show(Math.max(...finite))})`;
}

const times = (v: number) => `${fmt(v, 2)}x`;
const percent = (v: number) => `${fmt(v, 0)}%`;

/** cvserve's ratios in one round, against the rows that ran beside it in that round. */
interface RoundRatios {
  xPeer: number;
  p99VsPeer: number;
  xBefore: number;
  ofLimit: number;
  ofAtOnce: number;
  limit?: RowLimit;
}

function roundRatios(cv: Row, sameRound: Row[], fallbackLimit: RowLimit | undefined): RoundRatios {
  const best = sameRound.filter((r) => !r.target.startsWith('cvserve') && r.ok > 0).sort((a, b) => b.rps - a.rps)[0];
  const before = sameRound.find((r) => r.target === BASELINE_NAME && r.ok > 0);
  const limit = cv.limit ?? fallbackLimit;
  return {
    xPeer: best ? cv.rps / best.rps : Number.NaN,
    p99VsPeer: best ? cv.p99 / best.p99 : Number.NaN,
    xBefore: before ? cv.rps / before.rps : Number.NaN,
    ofLimit: limit ? (100 * cv.rps) / limit.limit : Number.NaN,
    ofAtOnce: limit?.atOnce ? (100 * cv.rps) / limit.atOnce : Number.NaN,
    limit,
  };
}

function limitCell(rounds: RoundRatios[], rps: number): string {
  const limits = rounds.map((r) => r.limit).filter((l): l is RowLimit => l !== undefined);
  if (limits.length === 0) return '';
  if (rounds.length === 1) return percentOfLimit(rps, limits[0]!);
  const limit = fmt(median(limits.map((l) => l.limit)), 1);
  const own = `${spread(rounds.map((r) => r.ofLimit), percent)} of ${limit}`;
  if (!limits.some((l) => l.atOnce)) return own;
  const atOnce = fmt(median(limits.map((l) => l.atOnce ?? Number.NaN)), 1);
  return `${own} (${spread(rounds.map((r) => r.ofAtOnce), percent)} of ${atOnce} at once)`;
}

/** Whether a row never ran: its warm-up failed or the target could not serve it. */
const unavailable = (r: Row) => r.ok === 0 && r.answer && !r.answer.includes('B') && /^(HTTP|failed)/.test(r.answer);

export function printTable(rows: Row[], scenarioIds: string[], limits: Map<string, RowLimit>): string {
  const header = ['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'peak RSS MB', 'CPU ms/req', 'x best peer', 'p99 vs peer', '% of limit', 'x before'];
  const lines: string[][] = [header];
  for (const id of scenarioIds) {
    const group = rows.filter((r) => r.scenario === id);
    const targets = [...new Set(group.map((r) => r.target))];
    for (const target of targets) {
      const own = group.filter((r) => r.target === target);
      const failed = own.find(unavailable);
      if (failed) {
        lines.push([id, target, '-', '-', '-', String(own.reduce((n, r) => n + r.errors, 0)), '-', '-', '', '', `unavailable: ${failed.answer.slice(0, 40)}`, '']);
        continue;
      }
      const rps = median(own.map((r) => r.rps));
      const p50 = median(own.map((r) => r.p50));
      const p99 = median(own.map((r) => r.p99));
      const cpu = median(own.map((r) => r.cpuMsPerReq));
      const ratios = target === 'cvserve' ? own.map((r) => roundRatios(r, group.filter((g) => (g.round ?? 0) === (r.round ?? 0)), limits.get(id))) : [];
      const p99VsPeer = median(ratios.map((r) => r.p99VsPeer));
      lines.push([
        id,
        target,
        fmt(rps, rps >= 100 ? 0 : 1),
        fmt(p50, p50 >= 100 ? 0 : 1),
        fmt(p99, p99 >= 100 ? 0 : 1),
        String(own.reduce((n, r) => n + r.errors, 0)),
        fmt(Math.max(...own.map((r) => r.peakRssMb)), 0),
        fmt(cpu, cpu >= 100 ? 0 : 1),
        ratios.some((r) => Number.isFinite(r.xPeer)) ? spread(ratios.map((r) => r.xPeer), times) : '',
        Number.isFinite(p99VsPeer) ? (p99VsPeer <= 1 ? 'ok' : times(p99VsPeer)) : '',
        limitCell(ratios, rps),
        ratios.some((r) => Number.isFinite(r.xBefore)) ? spread(ratios.map((r) => r.xBefore), times) : '',
      ]);
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l, n) => {
      const line = l.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
      return n === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}
