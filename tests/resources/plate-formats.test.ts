import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DecodedChar } from '../../src/engines/onnx/text/ctc.js';
import { PLATE_FORMATS, plateCandidates, plateLike } from '../../src/resources/text/plate-formats.js';

/** Readings as the recognizer gives them: each character with its probability and its alternatives. */
function reading(spec: [string, number, ...[string, number][]][]): DecodedChar[] {
  return spec.map(([char, confidence, ...alts]) => ({ char, confidence, alternatives: alts.map(([c, p]) => ({ char: c, confidence: p })) }));
}
const sure = (text: string) => [...text].map((c) => [c, 0.99] as [string, number]);

describe('plate formats: per-position classes with the recognizer\'s own alternatives', () => {
  test('US: an O where a digit belongs becomes the 0 the recognizer also saw, and candidates rank by the product', () => {
    // 7ABC1O3: O at 0.6, 0 its alternative at 0.35.
    const chars = reading([...sure('7ABC1'), ['O', 0.6, ['0', 0.35], ['D', 0.03]], ['3', 0.99]]);
    const [best, ...rest] = plateCandidates(chars, 'us');
    assert.equal(best!.plate, '7ABC103');
    assert.equal(best!.matchesTemplate, true);
    assert.ok(Math.abs(best!.confidence - 0.99 ** 6 * 0.35) < 1e-9);
    // No US candidate has the letter O; every template candidate ranks before the free ones.
    for (const c of [best!, ...rest]) assert.ok(!c.plate.includes('O'), c.plate);
    const firstFree = rest.findIndex((c) => !c.matchesTemplate);
    assert.ok(firstFree === -1 || rest.slice(firstFree).every((c) => !c.matchesTemplate));
  });

  test('EU AB-123-CD: a 0 in a letter position becomes the O it could be, a B in a digit position the 8', () => {
    const chars = reading([['A', 0.98], ['0', 0.7, ['O', 0.25]], ['-', 0.9], ['1', 0.97], ['B', 0.6, ['8', 0.38]], ['3', 0.97], ['-', 0.9], ['C', 0.96], ['D', 0.95]]);
    const [best] = plateCandidates(chars, 'eu');
    assert.equal(best!.plate, 'AO183CD');
    assert.equal(best!.matchesTemplate, true);
  });

  test('only when no alternative fits does a look-alike stand in, at a fifth of the confidence', () => {
    const chars = reading([...sure('AB'), ['I', 0.9], ...sure('23CD')]);
    const [best] = plateCandidates(chars, 'eu');
    assert.equal(best!.plate, 'AB123CD');
    assert.ok(Math.abs(best!.confidence - 0.99 ** 6 * 0.9 * 0.2) < 1e-9);
  });

  test('region any: no positional rules, the reading as it is (upper case, separators dropped)', () => {
    const [best] = plateCandidates(reading([['a', 0.9], ['b', 0.9], ['-', 0.9], ['1', 0.9], ['2', 0.9]]), 'any');
    assert.deepEqual(best, { plate: 'AB12', confidence: 0.9 ** 4, matchesTemplate: false });
  });

  test('a reading that fits no layout stays a free candidate', () => {
    const [best] = plateCandidates(reading(sure('ABCDE12')), 'eu');
    assert.equal(best!.plate, 'ABCDE12');
    assert.equal(best!.matchesTemplate, false);
  });

  test('plate-like lines: 4+ letters and digits with a digit, not a clock or a date', () => {
    assert.equal(plateLike('7ABC123', 'us'), true);
    assert.equal(plateLike('AB-123-CD', 'eu'), true);
    assert.equal(plateLike('California', 'us'), false);
    assert.equal(plateLike('12:45:09', 'any'), false);
    assert.equal(plateLike('2024-05-17', 'any'), false);
    assert.equal(plateLike('A1', 'any'), false);
  });

  test('every layout uses only its format\'s classes', () => {
    for (const [region, f] of Object.entries(PLATE_FORMATS)) for (const l of f.layouts) for (const c of l) assert.ok(c in f.classes, `${region} ${l}`);
  });
});
