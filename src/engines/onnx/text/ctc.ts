/**
 * CTC greedy decoding of a text line: at each time step the most likely class (optionally only
 * among an allowed set of characters and the blank), repeats merged, blanks dropped. Each decoded
 * character keeps its probability and the next most likely allowed characters at its best step,
 * so a caller can choose another reading of a position (a plate format wanting a digit where the
 * recognizer saw a letter) from what the network said, not by blind substitution.
 */

export interface CharAlternative {
  char: string;
  confidence: number;
}

export interface DecodedChar {
  char: string;
  confidence: number;
  /** The next most likely allowed characters at this position, best first. */
  alternatives: CharAlternative[];
}

export interface DecodedLine {
  text: string;
  /** Mean of the characters' confidences (PaddleOCR's line score); 0 for an empty line. */
  confidence: number;
  chars: DecodedChar[];
}

/** Output class → character: the dictionary's lines from index 1 (0 is the blank), then a space when appended. */
export interface CtcAlphabet {
  /** characters[i] is class i's character; '' for the blank. */
  characters: string[];
  blankIndex: number;
}

/**
 * The dictionary as PaddleOCR reads it: one character per line. A file ending with a newline has
 * no extra empty class (that would shift every character by one).
 */
export function ctcAlphabet(dictionaryText: string, classes: number, blankIndex: number, appendSpace: boolean): CtcAlphabet {
  const lines = dictionaryText.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.at(-1) === '') lines.pop();
  const characters = [...lines];
  if (appendSpace) characters.push(' ');
  characters.splice(blankIndex, 0, '');
  if (characters.length !== classes) {
    throw new Error(`the dictionary gives ${characters.length} classes (${lines.length} lines${appendSpace ? ' + space' : ''} + blank), the model has ${classes}`);
  }
  return { characters, blankIndex };
}

/** The classes allowed when decoding: the blank and every class whose character is in `charset` (undefined: all). */
export function allowedClasses(alphabet: CtcAlphabet, charset: string | undefined): Int32Array {
  if (charset === undefined) return Int32Array.from(alphabet.characters.keys());
  const wanted = new Set([...charset]);
  const ids: number[] = [];
  alphabet.characters.forEach((c, i) => {
    if (i === alphabet.blankIndex || wanted.has(c)) ids.push(i);
  });
  return Int32Array.from(ids);
}

/** Decodes `steps` rows of `classes` probabilities starting at `offset` in `probs`. */
export function ctcDecode(probs: Float32Array, steps: number, classes: number, alphabet: CtcAlphabet, allowed: Int32Array, alternatives = 3, offset = 0): DecodedLine {
  const chars: DecodedChar[] = [];
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const row = offset + t * classes;
    let best = -1, bestP = -1;
    for (let k = 0; k < allowed.length; k++) {
      const c = allowed[k]!;
      const p = probs[row + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best === alphabet.blankIndex) {
      previous = best;
      continue;
    }
    if (best === previous) {
      // The same character over several steps: keep the step where it was surest.
      const last = chars[chars.length - 1]!;
      if (bestP > last.confidence) chars[chars.length - 1] = charAt(probs, row, best, bestP, alphabet, allowed, alternatives);
      continue;
    }
    previous = best;
    chars.push(charAt(probs, row, best, bestP, alphabet, allowed, alternatives));
  }
  const text = chars.map((c) => c.char).join('');
  const confidence = chars.length ? chars.reduce((s, c) => s + c.confidence, 0) / chars.length : 0;
  return { text, confidence, chars };
}

function charAt(probs: Float32Array, row: number, best: number, bestP: number, alphabet: CtcAlphabet, allowed: Int32Array, k: number): DecodedChar {
  const alts: CharAlternative[] = [];
  if (k > 0) {
    for (let i = 0; i < allowed.length; i++) {
      const c = allowed[i]!;
      if (c === best || c === alphabet.blankIndex) continue;
      const p = probs[row + c]!;
      if (alts.length === k && p <= alts[k - 1]!.confidence) continue;
      let at = alts.length;
      while (at > 0 && alts[at - 1]!.confidence < p) at--;
      alts.splice(at, 0, { char: alphabet.characters[c]!, confidence: p });
      if (alts.length > k) alts.pop();
    }
  }
  return { char: alphabet.characters[best]!, confidence: bestP, alternatives: alts };
}
