import type { RowFilter, TensorMsg } from './protocol.js';

/** The rows of a `[1, rows, width]` output whose `column` is at least `min`, and their indices. */
export function keepRows(t: TensorMsg<Float32Array>, filter: RowFilter): TensorMsg<Float32Array> {
  const [batch, rows = 0, width = 0] = t.dims;
  if (t.dims.length !== 3 || batch !== 1 || filter.column >= width) throw new Error(`cannot keep rows of ${filter.output}: dims [${t.dims.join(', ')}], column ${filter.column}`);
  const kept: number[] = [];
  for (let r = 0; r < rows; r++) if (t.data[r * width + filter.column]! >= filter.min) kept.push(r);
  const data = new Float32Array(kept.length * width);
  kept.forEach((r, i) => data.set(t.data.subarray(r * width, (r + 1) * width), i * width));
  return { data, dims: [1, kept.length, width], rows: Int32Array.from(kept) };
}
