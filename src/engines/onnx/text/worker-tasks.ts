import * as ort from 'onnxruntime-node';
import type { OnnxWorkerData } from '../protocol.js';
import { allowedClasses, ctcAlphabet, ctcDecode, type CtcAlphabet, type DecodedLine } from './ctc.js';
import { packImageNchw, packStrip } from './crop.js';
import { dbBoxes } from './db.js';
import type { TextDetectResult, TextDetectTask, TextRecognizeResult, TextRecognizeTask } from './protocol.js';

/**
 * The text tasks of an ONNX worker: packing, session runs and decoding all happen here, in the
 * worker thread, so the event loop only sees the boxes and strings that come back.
 */

let alphabet: CtcAlphabet | undefined;
const allowedByCharset = new Map<string, Int32Array>();

function allowed(a: CtcAlphabet, charset: string | undefined): Int32Array {
  const key = charset ?? '\u0000all';
  let ids = allowedByCharset.get(key);
  if (!ids) {
    ids = allowedClasses(a, charset);
    // A handful of charsets at most (one per route setting); the cache stays small.
    if (allowedByCharset.size < 16) allowedByCharset.set(key, ids);
  }
  return ids;
}

function float32(t: ort.Tensor): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new Error(`expected a float32 output, got ${t.type}`);
  return t.data;
}

async function detect(session: ort.InferenceSession, data: OnnxWorkerData, task: TextDetectTask): Promise<TextDetectResult> {
  const text = data.text;
  if (text?.kind !== 'db-text') throw new Error(`model ${data.modelId} is not a db-text detector`);
  const input = packImageNchw(task.rgb, task.width, task.height, text.pack);
  const t0 = performance.now();
  const out = await session.run({ [text.input]: new ort.Tensor('float32', input, [1, 3, task.height, task.width]) }, [text.output]);
  const runMs = performance.now() - t0;
  const map = out[text.output]!;
  const [, , h, w] = map.dims as number[];
  const boxes = dbBoxes(float32(map), { width: w!, height: h! }, task.source, {
    ...text.db,
    boxThreshold: task.boxThreshold ?? text.db.boxThreshold,
    maxCandidates: task.maxCandidates,
  });
  return { boxes, runMs };
}

async function recognize(session: ort.InferenceSession, data: OnnxWorkerData, task: TextRecognizeTask): Promise<TextRecognizeResult> {
  const text = data.text;
  if (text?.kind !== 'ctc') throw new Error(`model ${data.modelId} is not a ctc recognizer`);
  alphabet ??= ctcAlphabet(text.dictionary, text.classes, text.blankIndex, text.appendSpace);
  const ids = allowed(alphabet, task.charset);
  const image = { data: task.rgb, width: task.width, height: task.height };
  const lines: DecodedLine[] = [];
  let runMs = 0;
  for (const quad of task.quads) {
    const strip = packStrip(image, quad, text.pack);
    const t0 = performance.now();
    const out = await session.run({ [text.input]: new ort.Tensor('float32', strip.data, [1, 3, text.pack.height, strip.width]) }, [text.output]);
    runMs += performance.now() - t0;
    const probs = out[text.output]!;
    const [, steps, classes] = probs.dims as number[];
    if (classes !== text.classes) throw new Error(`the recognizer answered ${classes} classes, the manifest says ${text.classes}`);
    lines.push(ctcDecode(float32(probs), steps!, classes, alphabet, ids, task.alternatives));
  }
  return { lines, runMs };
}

export function textTask(session: ort.InferenceSession, data: OnnxWorkerData, task: TextDetectTask | TextRecognizeTask): Promise<unknown> {
  return task.op === 'text-detect' ? detect(session, data, task) : recognize(session, data, task);
}
