import type { RawImage } from '../../image/types.js';

export interface ShrunkRgb {
  rgb: { data: Uint8Array; width: number; height: number };
  /** Output size over input size, per axis (1 when untouched). */
  scaleX: number;
  scaleY: number;
}

/**
 * The image as 3-channel RGB whose longer side is at most `maxSide`, shrunk by averaging each
 * output pixel's box of input pixels (rows first, then columns). Gray is replicated, alpha
 * dropped. An RGB image small enough is returned as is, without a copy.
 */
export function shrinkToRgb(image: RawImage, maxSide: number): ShrunkRgb {
  const { width, height } = image;
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const outW = Math.max(1, Math.round(width * scale));
  const outH = Math.max(1, Math.round(height * scale));
  if (image.channels === 3 && outW === width && outH === height) return { rgb: image, scaleX: 1, scaleY: 1 };
  const rgb = toRgb(image);
  const out = outW === width && outH === height ? rgb : boxShrink(rgb, width, height, outW, outH);
  return { rgb: { data: out, width: outW, height: outH }, scaleX: outW / width, scaleY: outH / height };
}

function toRgb(image: RawImage): Uint8Array {
  const { data, channels } = image;
  if (channels === 3) return data;
  const n = image.width * image.height;
  const out = new Uint8Array(n * 3);
  for (let p = 0, i = 0, o = 0; p < n; p++, i += channels, o += 3) {
    out[o] = data[i]!;
    out[o + 1] = data[channels === 1 ? i : i + 1]!;
    out[o + 2] = data[channels === 1 ? i : i + 2]!;
  }
  return out;
}

/** Box-average shrink of interleaved RGB: each output row sums its band of input rows, then columns. */
function boxShrink(src: Uint8Array, width: number, height: number, outW: number, outH: number): Uint8Array {
  const rowStart = boxStarts(height, outH);
  const colStart = boxStarts(width, outW);
  const out = new Uint8Array(outW * outH * 3);
  const band = new Uint32Array(width * 3);
  const stride = width * 3;
  for (let oy = 0; oy < outH; oy++) {
    const y0 = rowStart[oy]!;
    const y1 = rowStart[oy + 1]!;
    band.fill(0);
    for (let y = y0; y < y1; y++) {
      const row = y * stride;
      for (let i = 0; i < stride; i++) band[i]! += src[row + i]!;
    }
    const rows = y1 - y0;
    let o = oy * outW * 3;
    for (let ox = 0; ox < outW; ox++) {
      const x0 = colStart[ox]!;
      const x1 = colStart[ox + 1]!;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let i = x0 * 3, end = x1 * 3; i < end; i += 3) {
        r += band[i]!;
        g += band[i + 1]!;
        b += band[i + 2]!;
      }
      const n = rows * (x1 - x0);
      out[o++] = (r + (n >> 1)) / n;
      out[o++] = (g + (n >> 1)) / n;
      out[o++] = (b + (n >> 1)) / n;
    }
  }
  return out;
}

/** Start index of each output cell's box in the input (plus the end); every box has a pixel or more. */
function boxStarts(size: number, outSize: number): Int32Array {
  const starts = new Int32Array(outSize + 1);
  for (let i = 0; i <= outSize; i++) starts[i] = Math.min(size, Math.floor((i * size) / outSize));
  return starts;
}
