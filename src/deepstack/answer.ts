import type { Response } from 'express';
import type { AppError } from '../errors.js';
import { packageVersion } from '../transport/version.js';

/**
 * Answers in the DeepStack / CodeProject.AI dialect: the native answers of the resources reshaped
 * into what the clients read, and the one error registry rendered as `{"success": false, "error",
 * "code"}` with the real HTTP status. Every answer is a buffer with its Content-Length, never
 * chunked (CodeProject.AI's source: chunked JSON makes Blue Iris fail).
 */

export interface Timings {
  /** Time in the resource's run: preprocessing, inference, decoding. */
  inferenceMs: number;
  /** Time in the pipeline, body read included. */
  processMs: number;
  /** From the request's arrival to the answer. */
  analysisRoundTripMs: number;
}

/** Sends `body` as JSON with an explicit Content-Length. */
export function sendJson(res: Response, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  res.status(status);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(bytes.length));
  res.end(bytes);
}

/** The dialect's error body: the registry's public message and the HTTP status as `code`. */
export function errorBody(err: AppError): { success: false; error: string; code: number } {
  return { success: false, error: err.publicMessage, code: err.status };
}

export function sendError(res: Response, err: AppError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
  // Answered before the body was read (a deadline, a refusal): the connection ends with this answer, so no second one (408) follows it.
  if (res.req && !res.req.complete) res.setHeader('Connection', 'close');
  sendJson(res, err.status, errorBody(err));
}

export type Box = [number, number, number, number];

/** A box as DeepStack's four integer corners. */
export function corners(box: Box): { x_min: number; y_min: number; x_max: number; y_max: number } {
  const [x1, y1, x2, y2] = box.map(Math.round) as Box;
  return { x_min: x1, y_min: y1, x_max: x2, y_max: y2 };
}

export function nativeResult<T>(body: Record<string, unknown>, what: string): T[] {
  if (!Array.isArray(body.result)) throw new Error(`${what}: the native answer has no result list`);
  return body.result as T[];
}

/** CodeProject.AI's message: "Found cat, bed, laptop..." or "No objects found". */
function foundMessage(labels: string[]): string {
  if (labels.length === 0) return 'No objects found';
  const unique = [...new Set(labels)];
  return `Found ${unique.slice(0, 3).join(', ')}${unique.length > 3 ? '...' : ''}`;
}

/** /catdetection's `{"status": "ok", "result": [{"box", "label", "score"}]}` as a detection answer (best first). */
export function detectionAnswer(body: Record<string, unknown>, timings: Timings, command: string, moduleId: string): Record<string, unknown> {
  const result = nativeResult<{ box: Box; label: string; score: number }>(body, 'detection');
  const predictions = result.map((r) => ({ label: r.label, confidence: r.score, ...corners(r.box) }));
  return {
    success: true,
    message: foundMessage(predictions.map((p) => p.label)),
    count: predictions.length,
    predictions,
    command,
    moduleId,
    ...timings,
  };
}

/** /facedetection's `{"result": [{"box", "score"}]}`: boxes and confidences, no label (as DeepStack's). */
export function faceAnswer(body: Record<string, unknown>, timings: Timings): Record<string, unknown> {
  const result = nativeResult<{ box: Box; score: number }>(body, 'face detection');
  const predictions = result.map((r) => ({ confidence: r.score, ...corners(r.box) }));
  return {
    success: true,
    message: predictions.length === 0 ? 'No faces found' : `Found ${predictions.length} face${predictions.length === 1 ? '' : 's'}`,
    count: predictions.length,
    predictions,
    command: 'detect',
    moduleId: 'cvserve-face',
    ...timings,
  };
}

/** /facerecognition's `{"result": [{"box", "userid", "confidence"}]}`; no face is a success with no predictions. */
export function recognizeAnswer(body: Record<string, unknown>, timings: Timings): Record<string, unknown> {
  const result = nativeResult<{ box: Box; userid: string; confidence: number }>(body, 'face recognition');
  const predictions = result.map((r) => ({ userid: r.userid, confidence: r.confidence, ...corners(r.box) }));
  const known = predictions.filter((p) => p.userid !== 'unknown').length;
  return {
    success: true,
    message: predictions.length === 0 ? 'No faces found' : known > 0 ? 'A face was recognised' : 'No known faces',
    count: predictions.length,
    predictions,
    command: 'recognize',
    moduleId: 'cvserve-face',
    ...timings,
  };
}

/** /predict's `{"predictions": [{"label", "probability"}]}` (top 1) as a scene: `{"label", "confidence"}`. */
export function sceneAnswer(body: Record<string, unknown>, timings: Timings): Record<string, unknown> {
  const top = (body.predictions as { label: string; probability: number }[] | undefined)?.[0];
  if (!top) throw new Error('scene: the classifier answered no class');
  return { success: true, label: top.label, confidence: top.probability, ...timings };
}

/** The update check Blue Iris makes: answered here, nothing fetched; the current version is the latest. */
export function updateAnswer(): Record<string, unknown> {
  const version = packageVersion();
  const [major = 0, minor = 0, patch = 0] = version.split(/[.+-]/).map(Number);
  const info = { major, minor, patch, preRelease: null, securityUpdate: false, build: 0, file: null, releaseNotes: null };
  return { success: true, message: 'This is the current version', version: null, current: info, latest: info, updateAvailable: false };
}
