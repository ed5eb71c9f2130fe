import sharp from 'sharp';
import type { OnnxEngine } from '../../engines/onnx/engine.js';
import type { RawImage } from '../../image/types.js';
import type { SuperresSpec } from '../../models/manifest.js';

/**
 * Super-resolution of any size through a model with a bounded (or fixed) input: the image is
 * padded by edge replication, cut into overlapping tiles, run in batches, and stitched by cutting
 * each overlap in the middle. Every kept output pixel is then at least overlap/2 input pixels away
 * from a tile edge, where zero padding inside the network would otherwise show as seams.
 */

export interface TileLayout {
  /** Tile origins along one axis, in padded-canvas coordinates. */
  starts: number[];
  /** Kept span of each tile, [from, to) in padded-canvas coordinates. */
  keep: [number, number][];
}

/** Tile origins and kept spans along one axis of `length` pixels. */
export function layoutAxis(length: number, tile: number, overlap: number): TileLayout {
  if (length <= tile) return { starts: [0], keep: [[0, length]] };
  const step = tile - overlap;
  const starts: number[] = [];
  for (let x = 0; x + tile < length; x += step) starts.push(x);
  starts.push(length - tile);
  const keep: [number, number][] = starts.map((x, i) => {
    const from = i === 0 ? 0 : Math.floor((starts[i - 1]! + tile + x) / 2);
    const to = i === starts.length - 1 ? length : Math.floor((x + tile + starts[i + 1]!) / 2);
    return [from, to];
  });
  return { starts, keep };
}

interface Planes {
  /** Planar float channels in 0..1 over the padded canvas. */
  data: Float32Array;
  channels: 1 | 3;
  width: number;
  height: number;
}

/** The image (luma or RGB, 0..1) on a canvas with `margin` replicated pixels left/top and at least that right/bottom. */
function paddedPlanes(image: RawImage, channels: 1 | 3, margin: number, width: number, height: number): Planes {
  const { data: px, width: w, height: h } = image;
  const data = new Float32Array(channels * width * height);
  const plane = width * height;
  const cols = new Int32Array(width);
  for (let x = 0; x < width; x++) cols[x] = Math.min(Math.max(x - margin, 0), w - 1);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max(y - margin, 0), h - 1);
    const srcRow = sy * w;
    const dstRow = y * width;
    for (let x = 0; x < width; x++) {
      const s = (srcRow + cols[x]!) * 3;
      const r = px[s]!;
      const g = px[s + 1]!;
      const b = px[s + 2]!;
      if (channels === 1) data[dstRow + x] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
      else {
        data[dstRow + x] = r / 255;
        data[plane + dstRow + x] = g / 255;
        data[2 * plane + dstRow + x] = b / 255;
      }
    }
  }
  return { data, channels, width, height };
}

interface Tile {
  x: number;
  y: number;
  keepX: [number, number];
  keepY: [number, number];
}

export interface UpscaleOptions {
  engine: OnnxEngine;
  modelId: string;
  inputName: string;
  spec: SuperresSpec;
  signal?: AbortSignal;
  /** Called after each batch of tiles with the tiles done and the total. */
  progress?(done: number, total: number): void;
}

/** How an image of this size is cut: the tile size, the padded canvas and the tiles, from its dimensions alone. */
export interface TilePlan {
  tileW: number;
  tileH: number;
  canvasW: number;
  canvasH: number;
  margin: number;
  tiles: Tile[];
}

/** Tile size and padded canvas for an image of this size. */
function tileGeometry(width: number, height: number, spec: SuperresSpec): Omit<TilePlan, 'tiles'> {
  const margin = Math.ceil(spec.overlap / 2);
  const fixed = spec.family === 'y-channel-fixed-tile';
  const tileW = fixed ? spec.tile : Math.min(spec.tile, width + 2 * margin);
  const tileH = fixed ? spec.tile : Math.min(spec.tile, height + 2 * margin);
  return { tileW, tileH, canvasW: Math.max(width + 2 * margin, tileW), canvasH: Math.max(height + 2 * margin, tileH), margin };
}

export function planTiles(width: number, height: number, spec: SuperresSpec): TilePlan {
  const geometry = tileGeometry(width, height, spec);
  const ax = layoutAxis(geometry.canvasW, geometry.tileW, spec.overlap);
  const ay = layoutAxis(geometry.canvasH, geometry.tileH, spec.overlap);
  const tiles: Tile[] = [];
  ay.starts.forEach((y, j) => ax.starts.forEach((x, i) => tiles.push({ x, y, keepX: ax.keep[i]!, keepY: ay.keep[j]! })));
  return { ...geometry, tiles };
}

/** The tile count and canvas of planTiles in closed form (layoutAxis's count), cheap for any size. */
export function tileCount(width: number, height: number, spec: SuperresSpec): { tiles: number; canvasW: number; canvasH: number } {
  const { tileW, tileH, canvasW, canvasH } = tileGeometry(width, height, spec);
  const along = (length: number, tile: number) => (length <= tile ? 1 : Math.ceil((length - tile) / (tile - spec.overlap)) + 1);
  return { tiles: along(canvasW, tileW) * along(canvasH, tileH), canvasW, canvasH };
}

/** Upscales an RGB image by the model's scale. Output is RGB, exactly scale × the input size. */
export async function upscaleImage(image: RawImage, options: UpscaleOptions): Promise<RawImage> {
  if (image.channels !== 3) throw new Error('upscaleImage needs RGB');
  const { spec } = options;
  const s = spec.scale;
  const channels = spec.family === 'y-channel-fixed-tile' ? 1 : 3;
  const { tileW, tileH, canvasW, canvasH, margin, tiles } = planTiles(image.width, image.height, spec);
  const planes = paddedPlanes(image, channels, margin, canvasW, canvasH);

  const outW = image.width * s;
  const outH = image.height * s;
  // Luma plane (y family) or interleaved RGB (rgb family), already clamped and rounded.
  const out = new Uint8Array(outW * outH * channels);

  const batches: Tile[][] = [];
  for (let i = 0; i < tiles.length; i += spec.batch) batches.push(tiles.slice(i, i + spec.batch));
  const runBatch = async (batch: Tile[]) => {
    const tilePixels = tileW * tileH;
    const feed = new Float32Array(batch.length * channels * tilePixels);
    batch.forEach((t, b) => {
      for (let c = 0; c < channels; c++) {
        const src = c * planes.width * planes.height;
        const dst = (b * channels + c) * tilePixels;
        for (let row = 0; row < tileH; row++) {
          const from = src + (t.y + row) * planes.width + t.x;
          feed.set(planes.data.subarray(from, from + tileW), dst + row * tileW);
        }
      }
    });
    const outputs = await options.engine.run(options.modelId, { [options.inputName]: { data: feed, dims: [batch.length, channels, tileH, tileW] } }, {
      signal: options.signal,
      outputs: [spec.output],
    });
    const result = outputs[spec.output];
    if (!result) throw new Error(`the model has no output ${spec.output}`);
    const [, oc, oh, ow] = result.dims as [number, number, number, number];
    if (oc !== channels || oh !== tileH * s || ow !== tileW * s) {
      throw new Error(`model output is ${result.dims.join('x')}, expected ${batch.length}x${channels}x${tileH * s}x${tileW * s}`);
    }
    batch.forEach((t, b) => stitch(result.data, b, t, { channels, s, ow, oh, margin, out, outW, outH }));
  };
  // As many batches in flight as the model has workers; more would only wait in its queue.
  let next = 0;
  let done = 0;
  const lanes = Array.from({ length: Math.min(Math.max(1, options.engine.workersOf(options.modelId)), batches.length) }, async () => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      await runBatch(batch);
      done += batch.length;
      options.progress?.(done, tiles.length);
    }
  });
  await Promise.all(lanes);

  if (channels === 3) return { data: out, width: outW, height: outH, channels: 3 };
  return mergeChroma(image, out, outW, outH);
}

interface StitchTarget {
  channels: number;
  s: number;
  ow: number;
  oh: number;
  margin: number;
  out: Uint8Array;
  outW: number;
  outH: number;
}

/** Copies the kept part of one output tile into the output image (dropping the padding margin). */
function stitch(data: Float32Array, b: number, t: Tile, o: StitchTarget): void {
  const { channels, s, ow, oh, margin, out, outW, outH } = o;
  // Kept span in output-image coordinates (the canvas origin is `margin` input pixels before the image).
  const x0 = Math.max(0, (t.keepX[0] - margin) * s);
  const x1 = Math.min(outW, (t.keepX[1] - margin) * s);
  const y0 = Math.max(0, (t.keepY[0] - margin) * s);
  const y1 = Math.min(outH, (t.keepY[1] - margin) * s);
  const plane = ow * oh;
  for (let c = 0; c < channels; c++) {
    const base = (b * channels + c) * plane;
    for (let y = y0; y < y1; y++) {
      const ty = y + margin * s - t.y * s;
      const srcRow = base + ty * ow - t.x * s + margin * s;
      for (let x = x0; x < x1; x++) {
        const v = data[srcRow + x]!;
        const q = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
        out[(y * outW + x) * channels + c] = q;
      }
    }
  }
}

/** New luma + chroma from a bicubic upscale of the RGB image, back to RGB (full-range BT.601). */
async function mergeChroma(image: RawImage, luma: Uint8Array, outW: number, outH: number): Promise<RawImage> {
  const cubic = await sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: 3 },
    limitInputPixels: image.width * image.height,
  })
    .resize(outW, outH, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer();
  const out = new Uint8Array(outW * outH * 3);
  const clamp = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));
  for (let i = 0, p = 0; i < luma.length; i++, p += 3) {
    const r = cubic[p]!;
    const g = cubic[p + 1]!;
    const b = cubic[p + 2]!;
    const cb = -0.168736 * r - 0.331264 * g + 0.5 * b; // Cb − 128
    const cr = 0.5 * r - 0.418688 * g - 0.081312 * b; // Cr − 128
    const y = luma[i]!;
    out[p] = clamp(y + 1.402 * cr);
    out[p + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
    out[p + 2] = clamp(y + 1.772 * cb);
  }
  return { data: out, width: outW, height: outH, channels: 3 };
}
