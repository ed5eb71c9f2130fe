import { corners, nativeResult, type Box, type Timings } from './answer.js';

/**
 * CodeProject.AI's licence plate (ALPR module) and OCR answers, from /alpr's and /ocr's native
 * ones: `predictions` with `label` ("Plate: ABC123" for plates), `plate`, `confidence` and the four
 * integer corners, plus `count`, `message`, `inferenceMs` and `processMs`.
 */

/** CodeProject.AI's ALPR message: "Found Plate: ABC123, Plate: XYZ9" (three at most, then "..."), or "No plates found". */
function platesMessage(labels: string[]): string {
  if (labels.length === 0) return 'No plates found';
  return `Found ${labels.slice(0, 3).join(', ')}${labels.length > 3 ? '...' : ''}`;
}

interface NativePlate {
  plate: string;
  confidence: number;
  box: Box;
  candidates: { plate: string; confidence: number; matchesTemplate: boolean }[];
  vehicle?: { label: string; score: number; box: Box };
}

/** /alpr's answer as CodeProject.AI's `/v1/vision/alpr`; cvserve adds each plate's `candidates` and `vehicle`. */
export function alprAnswer(body: Record<string, unknown>, timings: Timings): Record<string, unknown> {
  const predictions = nativeResult<NativePlate>(body, 'alpr').map((r) => ({
    label: `Plate: ${r.plate}`,
    plate: r.plate,
    confidence: r.confidence,
    ...corners(r.box),
    candidates: r.candidates,
    ...(r.vehicle ? { vehicle: { label: r.vehicle.label, confidence: r.vehicle.score, ...corners(r.vehicle.box) } } : {}),
  }));
  return {
    success: true,
    message: platesMessage(predictions.map((p) => p.label)),
    count: predictions.length,
    predictions,
    command: 'alpr',
    moduleId: 'cvserve-alpr',
    ...timings,
  };
}

/** /ocr's answer as CodeProject.AI's `/v1/vision/ocr`: one prediction per line, its text as `label`. */
export function ocrAnswer(body: Record<string, unknown>, timings: Timings): Record<string, unknown> {
  const predictions = nativeResult<{ text: string; confidence: number; box: Box }>(body, 'ocr').map((r) => ({ label: r.text, confidence: r.confidence, ...corners(r.box) }));
  return {
    success: true,
    message: predictions.length === 1 ? '1 text found' : `${predictions.length} pieces of text found`,
    count: predictions.length,
    predictions,
    command: 'ocr',
    moduleId: 'cvserve-ocr',
    ...timings,
  };
}

/** The plate region a dialect request names (`region`, a cvserve extension), or the native default. */
export function regionField(fields: Record<string, string>): Record<string, string> {
  const region = fields.region?.trim().toLowerCase();
  return region ? { region } : {};
}
