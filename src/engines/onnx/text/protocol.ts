import type { DecodedLine } from './ctc.js';
import type { PackSpec } from './crop.js';
import type { DbOptions, Quad, TextBox } from './db.js';

/** What an ONNX worker holding a text model needs beyond the session: how to pack its input and read its output. */
export type TextWorkerConfig =
  | { kind: 'db-text'; input: string; output: string; pack: Omit<PackSpec, 'height' | 'maxWidth'>; db: Omit<DbOptions, 'maxCandidates'> }
  | { kind: 'ctc'; input: string; output: string; pack: PackSpec; dictionary: string; classes: number; blankIndex: number; appendSpace: boolean };

/** Text detection on an image already resized to the model input (sides multiples of 32). */
export interface TextDetectTask {
  op: 'text-detect';
  rgb: Uint8Array;
  width: number;
  height: number;
  /** The original image's size: boxes come back in its coordinates. */
  source: { width: number; height: number };
  /** Overrides of the manifest's thresholds. */
  boxThreshold?: number;
  /** Most regions looked at. */
  maxCandidates: number;
}

export interface TextDetectResult {
  boxes: TextBox[];
  runMs: number;
}

/** Recognition of every quad of one RGB image, one session run per quad. */
export interface TextRecognizeTask {
  op: 'text-recognize';
  rgb: Uint8Array;
  width: number;
  height: number;
  quads: Quad[];
  /** Characters the decoder may choose (undefined: every character of the dictionary). */
  charset?: string;
  /** Alternatives kept per character. */
  alternatives: number;
}

export interface TextRecognizeResult {
  lines: DecodedLine[];
  runMs: number;
}
