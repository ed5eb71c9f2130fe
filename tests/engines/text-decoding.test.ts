import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { allowedClasses, ctcAlphabet, ctcDecode } from '../../src/engines/onnx/text/ctc.js';
import { packStrip, stripWidth } from '../../src/engines/onnx/text/crop.js';
import { dbBoxes, type Quad } from '../../src/engines/onnx/text/db.js';
import { detectTarget } from '../../src/resources/text/text-models.js';
import { loadManifest } from '../../src/models/manifest.js';
import { npmFilePath } from '../../src/models/npm-files.js';

/** DB post-processing, CTC decoding and strip packing on inputs built here, so every number is known. */

describe('DB post-processing (db-text)', () => {
  const options = { threshold: 0.3, boxThreshold: 0.6, unclipRatio: 1.5, minSize: 3, maxCandidates: 1000 };

  function map(width: number, height: number, rects: { x: number; y: number; w: number; h: number; p: number }[]): Float32Array {
    const m = new Float32Array(width * height);
    for (const r of rects) for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x; x < r.x + r.w; x++) m[y * width + x] = r.p;
    return m;
  }

  test('a text region becomes its rectangle grown by the unclip distance, in source coordinates, lines in reading order', () => {
    // Region x 10..49 (contour width 39), y 20..29 (height 9): d = 39 × 9 × 1.5 / (2 × 48) = 5.484375.
    const prob = map(100, 60, [
      { x: 60, y: 21, w: 30, h: 8, p: 0.9 },
      { x: 10, y: 20, w: 40, h: 10, p: 0.9 },
      { x: 10, y: 45, w: 20, h: 6, p: 0.9 },
    ]);
    const boxes = dbBoxes(prob, { width: 100, height: 60 }, { width: 200, height: 120 }, options);
    assert.equal(boxes.length, 3);
    const d = (39 * 9 * 1.5) / (2 * 48);
    const [tl, tr, br, bl] = boxes[0]!.quad;
    assert.deepEqual([tl, tr, br, bl].map(([x, y]) => [+(x / 2).toFixed(4), +(y / 2).toFixed(4)]), [
      [+(10 - d).toFixed(4), +(20 - d).toFixed(4)],
      [+(49 + d).toFixed(4), +(20 - d).toFixed(4)],
      [+(49 + d).toFixed(4), +(29 + d).toFixed(4)],
      [+(10 - d).toFixed(4), +(29 + d).toFixed(4)],
    ]);
    assert.ok(Math.abs(boxes[0]!.score - 0.9) < 1e-6);
    // The second box of the first line is to its right; the third is the next line.
    assert.ok(boxes[1]!.quad[0][0] > boxes[0]!.quad[1][0] - 1 && boxes[2]!.quad[0][1] > boxes[1]!.quad[2][1]);
  });

  test('regions under the box threshold, or thinner than minSize, are dropped', () => {
    const prob = map(100, 60, [
      { x: 10, y: 10, w: 40, h: 10, p: 0.5 }, // mean 0.5 < 0.6
      { x: 10, y: 40, w: 40, h: 2, p: 0.9 }, // contour height 1 < 3
    ]);
    assert.deepEqual(dbBoxes(prob, { width: 100, height: 60 }, { width: 100, height: 60 }, options), []);
  });

  test('a slanted region gives a rotated rectangle', () => {
    const width = 120, height = 80;
    const prob = new Float32Array(width * height);
    // A band 8 px thick along the line y = 20 + 0.3 (x - 10), x 10..100.
    for (let x = 10; x <= 100; x++) for (let t = 0; t < 8; t++) prob[Math.round(20 + 0.3 * (x - 10) + t) * width + x] = 0.95;
    const [box] = dbBoxes(prob, { width, height }, { width, height }, options);
    const [tl, tr] = box!.quad;
    const slope = (tr[1] - tl[1]) / (tr[0] - tl[0]);
    assert.ok(Math.abs(slope - 0.3) < 0.02, `slope ${slope}`);
  });
});

describe('CTC decoding (ctc)', () => {
  // Classes: 0 blank, 1 'A', 2 '0', 3 'O', 4 '中', 5 ' '.
  const alphabet = ctcAlphabet('A\n0\nO\n中\n', 6, 0, true);

  test('the dictionary: a trailing newline adds no class; blank at 0, space last; a wrong count is refused', () => {
    assert.deepEqual(alphabet.characters, ['', 'A', '0', 'O', '中', ' ']);
    assert.deepEqual(ctcAlphabet('A\n0\nO\n中', 6, 0, true).characters, alphabet.characters);
    assert.throws(() => ctcAlphabet('A\n0\nO\n中\n\n', 6, 0, true), /7 classes/);
  });

  test('the PP-OCRv4 dictionary of the npm package: 6623 lines + space + blank = 6625 classes', async () => {
    const manifest = loadManifest();
    const entry = manifest.files.find((f) => f.file === 'ppocr_keys_v1.txt')!;
    const file = npmFilePath(entry);
    assert.ok(file, 'the package is installed');
    const a = ctcAlphabet(await readFile(file, 'utf8'), 6625, 0, true);
    assert.equal(a.characters[1], "'");
    assert.equal(a.characters.at(-1), ' ');
    assert.equal(a.characters.length, 6625);
    for (const c of 'ABCXYZabcxyz0123456789.-·') assert.ok(a.characters.includes(c), c);
  });

  function probs(rows: number[][]): Float32Array {
    return Float32Array.from(rows.flat());
  }

  test('repeats merge, blanks split, each character keeps its best step and its alternatives', () => {
    const p = probs([
      [0.1, 0.8, 0.05, 0.05, 0, 0], // A 0.8
      [0.1, 0.9, 0, 0, 0, 0], // A again (merged; 0.9 kept)
      [0.9, 0.1, 0, 0, 0, 0], // blank
      [0.1, 0.7, 0.1, 0.1, 0, 0], // A after a blank: a new character
      [0.0, 0, 0.55, 0.45, 0, 0], // 0, O close behind
    ]);
    const line = ctcDecode(p, 5, 6, alphabet, allowedClasses(alphabet, undefined), 2);
    assert.equal(line.text, 'AA0');
    assert.deepEqual(line.chars.map((c) => c.confidence.toFixed(2)), ['0.90', '0.70', '0.55']);
    assert.deepEqual(line.chars[2]!.alternatives.map((a) => a.char), ['O', 'A']);
    assert.ok(Math.abs(line.confidence - (0.9 + 0.7 + 0.55) / 3) < 1e-6);
  });

  test('a restricted charset decodes the best allowed character (an emblem read as 中 becomes what else it could be)', () => {
    const p = probs([[0.05, 0.3, 0, 0, 0.65, 0]]);
    assert.equal(ctcDecode(p, 1, 6, alphabet, allowedClasses(alphabet, undefined)).text, '中');
    assert.equal(ctcDecode(p, 1, 6, alphabet, allowedClasses(alphabet, 'A0O ')).text, 'A');
  });
});

describe('recognizer strips', () => {
  const spec = { height: 48, maxWidth: 1280, channels: 'BGR' as const, scale: 1 / 255, mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };

  test('height 48, width from the aspect ratio (no padding to 320), tall boxes read rotated', () => {
    assert.equal(stripWidth([[0, 0], [200, 0], [200, 50], [0, 50]], spec), 192);
    assert.equal(stripWidth([[0, 0], [30, 0], [30, 90], [0, 90]], spec), 144);
  });

  test('pixels are packed BGR, normalized, and taken from inside the quad', () => {
    // Left half red, right half blue: the strip's left is red, its right blue, in BGR planes.
    const width = 40, height = 10;
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * width + x) * 3);
    const quad: Quad = [[0, 0], [39, 0], [39, 9], [0, 9]];
    const { data: strip, width: w } = packStrip({ data, width, height }, quad, spec);
    const plane = 48 * w;
    const at = (c: number, x: number) => strip[c * plane + 24 * w + x]!;
    assert.deepEqual([at(0, 2), at(2, 2)], [-1, 1]); // B = -1, R = 1 on the left
    assert.deepEqual([at(0, w - 3), at(2, w - 3)], [1, -1]);
  });

  test('the detector input: long side 960 (small photos enlarged), sides multiples of 32', () => {
    assert.deepEqual(detectTarget({ width: 450, height: 300 }, 960, 32, true), { width: 960, height: 640 });
    assert.deepEqual(detectTarget({ width: 4000, height: 3000 }, 960, 32, true), { width: 960, height: 736 });
    assert.deepEqual(detectTarget({ width: 450, height: 300 }, 960, 32, false), { width: 448, height: 288 });
    assert.deepEqual(detectTarget({ width: 3000, height: 10 }, 960, 32, true), { width: 960, height: 32 });
  });
});
