import type { DecodedChar } from '../../engines/onnx/text/ctc.js';

/**
 * Licence plate formats as a small table: per region, the character classes a position may hold
 * and the layouts (one class letter per character, separators left out) its plates follow. A
 * reading is fitted to a layout by choosing, at each position, the recognizer's most likely
 * character of the position's class among what it actually considered (its alternatives), never by
 * blind substitution; only when none of them fits does a look-alike (O/0, I/1, ...) stand in, at a
 * fraction of the confidence. Adding a region is adding a row.
 */

export interface PlateFormat {
  description: string;
  /** Class letter → the characters it allows. */
  classes: Record<string, string>;
  /** Layouts, most common first: one class letter per character. */
  layouts: string[];
  /** The class of a reading that fits no layout (e.g. US plates have no letter O). */
  free: string;
  /** Fewest and most characters of a plate. */
  length: [number, number];
}

const DIGITS = '0123456789';
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const US_LETTERS = LETTERS.replace('O', '');

export const PLATE_FORMATS = {
  us: {
    description: 'United States: 5 to 8 letters and digits, no letter O; common 7- and 6-character layouts (1ABC234, ABC1234, ABC123, 123ABC, AB1C2D, A123456)',
    classes: { L: US_LETTERS, D: DIGITS, A: US_LETTERS + DIGITS },
    layouts: ['DLLLDDD', 'LLLDDDD', 'LLLDDD', 'DDDLLL', 'LLDLDL', 'LDDDDDD', 'DLLDDD', 'DDDDDDD', 'LLDDDDD', 'DLLLDD'],
    free: 'A',
    length: [5, 8],
  },
  eu: {
    description: 'European layouts: AB-123-CD (France, Italy), AB12 CDE (United Kingdom), 12-ABC-3 and ABC-12-D (Netherlands), AB 123C (Germany-like, letters then digits)',
    classes: { L: LETTERS, D: DIGITS, A: LETTERS + DIGITS },
    layouts: ['LLDDDLL', 'LLDDLLL', 'DDLLLD', 'LLLDDL', 'LLDDDD', 'LLLDDDD', 'LLDDDDL', 'LDDDD', 'LLLDDD'],
    free: 'A',
    length: [4, 8],
  },
  any: {
    description: 'Any region: 2 to 10 letters and digits, no positional rules',
    classes: { A: LETTERS + DIGITS },
    layouts: [],
    free: 'A',
    length: [2, 10],
  },
} satisfies Record<string, PlateFormat>;

export type PlateRegion = keyof typeof PLATE_FORMATS;
export const PLATE_REGIONS = Object.keys(PLATE_FORMATS) as [PlateRegion, ...PlateRegion[]];

/** Look-alikes the recognizer confuses; used only when none of its own alternatives fits a position. */
const LOOK_ALIKE: Record<string, string> = {
  O: '0', '0': 'O', Q: '0', D: '0', I: '1', '1': 'I', L: '1', Z: '2', '2': 'Z', S: '5', '5': 'S', B: '8', '8': 'B', G: '6', '6': 'G', A: '4', '4': 'A', T: '7', '7': 'T',
};
/** The confidence a look-alike keeps of the character it replaces. */
const LOOK_ALIKE_FACTOR = 0.2;

export interface PlateCandidate {
  plate: string;
  /** Product of the characters' confidences. */
  confidence: number;
  /** The candidate follows one of the region's layouts. */
  matchesTemplate: boolean;
}

interface Option {
  char: string;
  confidence: number;
}

/** The characters a position may take for a class, best first: the recognizer's own reading and alternatives that fit, else a look-alike. */
function options(c: DecodedChar, allowed: string, keep: number): Option[] {
  const seen: Option[] = [];
  for (const o of [{ char: c.char.toUpperCase(), confidence: c.confidence }, ...c.alternatives.map((a) => ({ char: a.char.toUpperCase(), confidence: a.confidence }))]) {
    if (allowed.includes(o.char) && !seen.some((s) => s.char === o.char)) seen.push(o);
  }
  seen.sort((a, b) => b.confidence - a.confidence);
  if (seen.length === 0) {
    const alike = LOOK_ALIKE[c.char.toUpperCase()];
    if (alike && allowed.includes(alike)) seen.push({ char: alike, confidence: c.confidence * LOOK_ALIKE_FACTOR });
  }
  return seen.slice(0, keep);
}

/** The `limit` best strings (by product of confidences) that take, at each position, one of its options. */
function bestStrings(positions: Option[][], limit: number): { plate: string; confidence: number }[] {
  let beam = [{ plate: '', confidence: 1 }];
  for (const opts of positions) {
    if (opts.length === 0) return [];
    const next: { plate: string; confidence: number }[] = [];
    for (const b of beam) for (const o of opts) next.push({ plate: b.plate + o.char, confidence: b.confidence * o.confidence });
    next.sort((a, b) => b.confidence - a.confidence);
    beam = next.slice(0, limit);
  }
  return beam;
}

/** The plate's characters: letters and digits of the reading, separators (space . - ·) dropped. */
export function plateChars(chars: readonly DecodedChar[]): DecodedChar[] {
  return chars.filter((c) => /^[A-Za-z0-9]$/.test(c.char));
}

/**
 * Candidate readings of one text line as a plate of `region`, best first: those that follow one of
 * the region's layouts (ranked by the product of character confidences), then free readings.
 */
export function plateCandidates(chars: readonly DecodedChar[], region: PlateRegion, limit = 10): PlateCandidate[] {
  const format: PlateFormat = PLATE_FORMATS[region];
  const kept = plateChars(chars);
  const found = new Map<string, PlateCandidate>();
  const add = (plate: string, confidence: number, matchesTemplate: boolean) => {
    const had = found.get(plate);
    if (!had || (matchesTemplate && !had.matchesTemplate) || (had.matchesTemplate === matchesTemplate && confidence > had.confidence)) found.set(plate, { plate, confidence, matchesTemplate });
  };
  for (const layout of format.layouts) {
    if (layout.length !== kept.length) continue;
    const positions = kept.map((c, i) => options(c, format.classes[layout[i]! as keyof typeof format.classes]!, 3));
    for (const s of bestStrings(positions, limit)) add(s.plate, s.confidence, true);
  }
  if (kept.length >= format.length[0] && kept.length <= format.length[1]) {
    const free = format.classes[format.free as keyof typeof format.classes]!;
    const positions = kept.map((c) => options(c, free, 2));
    for (const s of bestStrings(positions, limit)) add(s.plate, s.confidence, false);
  }
  return [...found.values()].sort((a, b) => Number(b.matchesTemplate) - Number(a.matchesTemplate) || b.confidence - a.confidence).slice(0, limit);
}

const CLOCK = /\d{1,2}[:.]\d{2}([:.]\d{2})?/;
const DATE = /\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}/;

/** Whether a recognized line can be a plate at all: 4+ letters/digits with a digit, not a clock or date overlay. */
export function plateLike(text: string, region: PlateRegion): boolean {
  const alnum = text.replace(/[^A-Za-z0-9]/g, '');
  const [min, max] = PLATE_FORMATS[region].length;
  if (alnum.length < Math.max(4, min) || alnum.length > max) return false;
  if (!/[0-9]/.test(alnum)) return false;
  return !CLOCK.test(text) && !DATE.test(text);
}
