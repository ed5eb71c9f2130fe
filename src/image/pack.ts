import { jpegAddon } from './jpeg-decoder.js';

/**
 * Model input packing: interleaved 8-bit RGB into a float32 (or uint8) tensor, planar or
 * interleaved, with the model's scale, mean and std. No sharp here: ONNX workers pack too.
 */

export interface PackSpec {
  channels: 'RGB' | 'BGR';
  /** value = (pixel × scale − mean[c]) / std[c], c in model channel order. */
  scale: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  layout: 'NCHW' | 'NHWC';
  dtype: 'float32' | 'uint8';
}

/**
 * Packs interleaved RGB pixels into one image of a batch tensor. `out` holds `batch` images;
 * `index` says which one this is. Returns `out`. Float inputs are packed by cvserve's addon where it
 * is built (native/jpeg/pack.c: the same floats, an eighth of the main thread's time), else here.
 */
export function packImage<T extends Float32Array | Uint8Array>(rgb: Uint8Array, pixels: number, spec: PackSpec, out: T, index = 0): T {
  const native = jpegAddon()?.packFloat32;
  if (!native || spec.dtype !== 'float32' || !(out instanceof Float32Array)) return packImageInJs(rgb, pixels, spec, out, index);
  native(rgb, pixels, out, index * pixels * 3, spec.layout === 'NCHW', ...channelArgs(spec));
  return out;
}

/** The source channel feeding each model channel. */
function sourceChannels(spec: PackSpec): [number, number, number] {
  return spec.channels === 'RGB' ? [0, 1, 2] : [2, 1, 0];
}

type ChannelArgs = [number, number, number, number, number, number, number, number, number];

/** The addon's per-channel arguments: source channels, then each channel's a and b (value = pixel × a + b). */
function channelArgs(spec: PackSpec): ChannelArgs {
  const a = (c: number) => spec.scale / spec.std[c]!;
  const b = (c: number) => -spec.mean[c]! / spec.std[c]!;
  return [...sourceChannels(spec), a(0), a(1), a(2), b(0), b(1), b(2)];
}

/** packImage in JavaScript: uint8 inputs, and float ones where the addon is not built. */
export function packImageInJs<T extends Float32Array | Uint8Array>(rgb: Uint8Array, pixels: number, spec: PackSpec, out: T, index = 0): T {
  const base = index * pixels * 3;
  const from = sourceChannels(spec);
  if (spec.dtype === 'uint8') {
    if (!(out instanceof Uint8Array)) throw new Error('uint8 input needs a Uint8Array');
    for (let c = 0; c < 3; c++) {
      const s = from[c]!;
      if (spec.layout === 'NHWC') for (let i = 0; i < pixels; i++) out[base + i * 3 + c] = rgb[i * 3 + s]!;
      else for (let i = 0, o = base + c * pixels; i < pixels; i++) out[o + i] = rgb[i * 3 + s]!;
    }
    return out;
  }
  for (let c = 0; c < 3; c++) {
    const s = from[c]!;
    const a = spec.scale / spec.std[c]!;
    const b = -spec.mean[c]! / spec.std[c]!;
    if (spec.layout === 'NHWC') for (let i = 0; i < pixels; i++) out[base + i * 3 + c] = rgb[i * 3 + s]! * a + b;
    else for (let i = 0, o = base + c * pixels; i < pixels; i++) out[o + i] = rgb[i * 3 + s]! * a + b;
  }
  return out;
}

/** A space-to-depth layer's blocks in its channel order: [dy, dx], each 0 or 1. */
export type SpaceToDepthBlocks = ReadonlyArray<readonly [number, number]>;

/**
 * packImage's values laid out as a graph's space-to-depth layer leaves them (YOLOX's Focus): planar,
 * 4 blocks × 3 channels of (width / 2) × (height / 2), block g holding the pixels at
 * (2y + dy, 2x + dx). The graph is then fed past that layer (free-dims.ts `feedFrom`). By the
 * addon where it is built, else here.
 */
export function packSpaceToDepth(rgb: Uint8Array, width: number, height: number, spec: PackSpec, blocks: SpaceToDepthBlocks, out: Float32Array, index = 0): Float32Array {
  const native = jpegAddon()?.packFloat32SpaceToDepth;
  if (!native) return packSpaceToDepthInJs(rgb, width, height, spec, blocks, out, index);
  native(rgb, width, height, out, index * width * height * 3, Int32Array.from(blocks.flat()), ...channelArgs(spec));
  return out;
}

/** packSpaceToDepth in JavaScript, where the addon is not built. */
export function packSpaceToDepthInJs(rgb: Uint8Array, width: number, height: number, spec: PackSpec, blocks: SpaceToDepthBlocks, out: Float32Array, index = 0): Float32Array {
  const w2 = width / 2;
  const h2 = height / 2;
  const from = sourceChannels(spec);
  for (const [g, [dy, dx]] of blocks.entries()) {
    for (let c = 0; c < 3; c++) {
      const a = spec.scale / spec.std[c]!;
      const b = -spec.mean[c]! / spec.std[c]!;
      let o = index * width * height * 3 + (g * 3 + c) * w2 * h2;
      for (let y = 0; y < h2; y++) {
        const row = ((2 * y + dy) * width + dx) * 3 + from[c]!;
        for (let x = 0; x < w2; x++) out[o++] = rgb[row + 6 * x]! * a + b;
      }
    }
  }
  return out;
}

/** A tensor buffer for `batch` images of `pixels` pixels and 3 channels. */
export function allocateBatch(dtype: 'float32' | 'uint8', batch: number, pixels: number): Float32Array | Uint8Array {
  return dtype === 'uint8' ? new Uint8Array(batch * pixels * 3) : new Float32Array(batch * pixels * 3);
}

/** Tensor dims for a batch of images in the given layout. */
export function batchDims(layout: 'NCHW' | 'NHWC', batch: number, size: { width: number; height: number }): number[] {
  return layout === 'NCHW' ? [batch, 3, size.height, size.width] : [batch, size.height, size.width, 3];
}

/** How an ONNX worker packs an input it is sent as 8-bit RGB: the model's packing, and YOLOX's Focus blocks where the feed is past that layer. */
export interface InputPacking {
  spec: PackSpec;
  blocks?: SpaceToDepthBlocks;
}

/**
 * A batch of interleaved RGB images, as many and as large as the feed's float dims say, packed
 * into a float32 tensor of those dims (packImage or packSpaceToDepth for each image): `reuse`
 * where it has that size (every value is written), else a new one.
 */
export function packFeed(rgb: Uint8Array, dims: readonly number[], packing: InputPacking, reuse?: Float32Array): Float32Array {
  const [batch = 0, d1 = 0, d2 = 0, d3 = 0] = dims;
  const { width, height } = packing.blocks ? { width: d3 * 2, height: d2 * 2 } : packing.spec.layout === 'NCHW' ? { width: d3, height: d2 } : { width: d2, height: d1 };
  const pixels = width * height;
  if (dims.length !== 4 || rgb.length !== batch * pixels * 3) throw new Error(`${rgb.length} bytes of RGB do not fill a [${dims.join(', ')}] feed`);
  const out = reuse?.length === rgb.length ? reuse : new Float32Array(rgb.length);
  for (let i = 0; i < batch; i++) {
    const image = rgb.subarray(i * pixels * 3, (i + 1) * pixels * 3);
    if (packing.blocks) packSpaceToDepth(image, width, height, packing.spec, packing.blocks, out, i);
    else packImage(image, pixels, packing.spec, out, i);
  }
  return out;
}
