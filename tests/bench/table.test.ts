import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, printTable, type Row, type RowLimit } from '../../bench/table.js';

function row(target: string, round: number, rps: number, extra: Partial<Row> = {}): Row {
  return { scenario: 's c4', target, round, rps, p50: 10, p99: 20, mean: 11, ok: Math.round(rps * 5), errors: 0, statusCodes: {}, durationS: 5, peakRssMb: 100 + round, cpuMsPerReq: 2, answer: '4 boxes', ...extra };
}

/** The table's cells for one target's line, by column name. */
function cells(table: string, target: string): Record<string, string> {
  const [header, rule, ...lines] = table.split('\n');
  const starts = [...rule!.matchAll(/-+/g)].map((m) => [m.index!, m.index! + m[0].length] as const);
  const cut = (line: string) => starts.map(([a, b]) => line.slice(a, b).trim());
  const names = cut(header!);
  const line = lines.find((l) => cut(l)[1] === target);
  assert.ok(line, `no line for ${target}`);
  return Object.fromEntries(cut(line).map((c, i) => [names[i]!, c]));
}

describe('bench table', () => {
  it('takes the median of an odd and an even count, ignoring NaN', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([Number.NaN, 5]), 5);
    assert.ok(Number.isNaN(median([])));
  });

  it('shows one round as before: plain ratios and the limit with its at-once figure', () => {
    const limit: RowLimit = { limit: 140, atOnce: 125 };
    const rows = [row('cvserve', 0, 112, { limit }), row('cvserve-before', 0, 100), row('gunicorn-w2', 0, 80, { p99: 10 }), row('flask-dev', 0, 56)];
    const c = cells(printTable(rows, ['s c4'], new Map()), 'cvserve');
    assert.equal(c['req/s'], '112');
    assert.equal(c['x best peer'], '1.40x');
    assert.equal(c['p99 vs peer'], '2.00x');
    assert.equal(c['% of limit'], '80% of 140.0 (90% of 125.0 at once)');
    assert.equal(c['x before'], '1.12x');
  });

  it('pairs each round with the peer and baseline of the same round, then takes the median', () => {
    // Per round: 100/100, 200/50, 300/300 -> 1, 4, 1 (median 1); medians alone would give 200/100 = 2.
    const rows = [
      row('cvserve', 0, 100), row('gunicorn-w2', 0, 100), row('cvserve-before', 0, 50),
      row('cvserve', 1, 200), row('gunicorn-w2', 1, 50), row('cvserve-before', 1, 400),
      row('cvserve', 2, 300), row('gunicorn-w2', 2, 300), row('cvserve-before', 2, 300),
    ];
    const table = printTable(rows, ['s c4'], new Map());
    const cv = cells(table, 'cvserve');
    assert.equal(cv['req/s'], '200');
    assert.equal(cv['x best peer'], '1.00x (1.00x-4.00x)');
    assert.equal(cv['x before'], '1.00x (0.50x-2.00x)');
    assert.equal(cells(table, 'gunicorn-w2')['req/s'], '100');
    assert.equal(cells(table, 'cvserve')['peak RSS MB'], '102');
  });

  it("measures each round against the kernel timed next to it, falling back to the run's start", () => {
    const rows = [row('cvserve', 0, 100, { limit: { limit: 125 } }), row('cvserve', 1, 100, { limit: { limit: 100 } }), row('cvserve', 2, 90)];
    const c = cells(printTable(rows, ['s c4'], new Map([['s c4', { limit: 150 }]])), 'cvserve');
    // 80%, 100% and 60% (90 of the fallback 150); the limits' median 125.
    assert.equal(c['% of limit'], '80% (60%-100%) of 125.0');
  });

  it('marks a target whose row did not run', () => {
    const rows = [row('cvserve', 0, 100), row('gunicorn-w2', 0, 0, { ok: 0, errors: 1, answer: 'HTTP 404 not found' })];
    const c = cells(printTable(rows, ['s c4'], new Map()), 'gunicorn-w2');
    assert.equal(c['% of limit'], 'unavailable: HTTP 404 not found');
    assert.equal(cells(printTable(rows, ['s c4'], new Map()), 'cvserve')['x best peer'], '');
  });
});
