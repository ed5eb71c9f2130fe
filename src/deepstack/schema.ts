/** Pieces of the dialect's answer schemas (OpenAPI 3.1, as plain data), shared by the route table's entries. */

export type Doc = Record<string, unknown>;

export const int = { type: 'integer' };
export const unit = { type: 'number', minimum: 0, maximum: 1 };
export const success = { const: true };
export const box = { x_min: int, y_min: int, x_max: int, y_max: int };
export const timings = {
  inferenceMs: { ...int, description: 'Time in the model run (preprocessing, inference, decoding).' },
  processMs: { ...int, description: 'Time in the pipeline, body read included.' },
  analysisRoundTripMs: { ...int, description: 'From the request\'s arrival to the answer.' },
};

export const object = (properties: Doc, required: string[] = Object.keys(properties)): Doc => ({ type: 'object', required, properties });

export const predictionsOf = (item: Doc): Doc => ({
  type: 'array',
  description: 'Best (detection) or largest (faces) first; box corners in integer pixels of the image sent.',
  items: object(item),
});

export function detectionSchema(): Doc {
  return object(
    {
      success,
      message: { type: 'string', description: 'CodeProject.AI\'s "Found cat, bed..." or "No objects found".' },
      count: int,
      predictions: predictionsOf({ label: { type: 'string' }, confidence: unit, ...box }),
      ...timings,
    },
    ['success', 'predictions', 'count'],
  );
}
