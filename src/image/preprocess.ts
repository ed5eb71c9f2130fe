import sharp, { type Sharp } from 'sharp';
import { decodeError } from './decode.js';
import { enlarge, enlargeJpeg, enlargesLikeSharp } from './enlarge.js';
import { reduce, reduceJpeg, reducedSize, reducesLikeSharp, type Shrink, type Window } from './reduce.js';
import type { ImageInput, RawImage } from './types.js';

/**
 * Model input preparation: sharp (or cvserve's addon, with sharp's pixels) does the resizing,
 * typed-array loops the cropping and padding; pack.ts packs the result into a tensor. No
 * per-pixel objects anywhere.
 */

export type ResizeSpec =
  | { mode: 'shorter-side-center-crop'; shorterSide: number; kernel: Kernel }
  | { mode: 'letterbox'; align: 'top-left' | 'center'; fill: number; kernel: Kernel }
  | { mode: 'stretch'; kernel: Kernel };

export type Kernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';

export interface Size {
  width: number;
  height: number;
}

/**
 * How model-input pixel coordinates relate to the original image:
 * `x_model = x_orig × scaleX + offsetX` (and the same for y).
 */
export interface InputTransform {
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
  /** The original image's size (after EXIF orientation). */
  source: Size;
}

/** Interleaved RGB pixels at exactly the model input size. */
export interface PreparedImage {
  rgb: Uint8Array;
  width: number;
  height: number;
  transform: InputTransform;
  /** `rgb` is the input's own decode (an image already at the model size): not the caller's to give away. */
  shared?: true;
}

/**
 * The size the image is resized to on the way to the model input, from its dimensions alone (no
 * decoding): what sharp will be asked to produce. The cost bound checks it before any work, as a
 * crop mode's shorter side scales the longer side by the same factor without limit.
 */
export function resizeTarget(resize: ResizeSpec, source: Size, size: Size): Size {
  switch (resize.mode) {
    case 'shorter-side-center-crop': {
      // sharp's `outside` fit: the shorter side becomes shorterSide, the other keeps the aspect ratio (rounded).
      const r = resize.shorterSide / Math.min(source.width, source.height);
      return { width: Math.max(resize.shorterSide, Math.round(source.width * r)), height: Math.max(resize.shorterSide, Math.round(source.height * r)) };
    }
    case 'letterbox': {
      const r = Math.min(size.width / source.width, size.height / source.height);
      return { width: Math.max(1, Math.min(size.width, Math.round(source.width * r))), height: Math.max(1, Math.min(size.height, Math.round(source.height * r))) };
    }
    case 'stretch':
      return size;
  }
}

/** Model-input coordinates back to original-image coordinates. */
export function toOriginal(t: InputTransform, x: number, y: number): [number, number] {
  return [(x - t.offsetX) / t.scaleX, (y - t.offsetY) / t.scaleY];
}

/** Runs a pipeline over the input to RGB pixels, holding the input's decode budget. */
async function rawRgb(input: ImageInput, pipeline: Sharp): Promise<{ data: Buffer; width: number; height: number }> {
  try {
    const { data, info } = await input.decoding(() => pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true }));
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { data, width: info.width, height: info.height };
  } catch (err) {
    throw decodeError(err);
  }
}

/**
 * Whether a resize to `target` starts from libjpeg's decode. libvips shrinks a JPEG on load
 * (decoding at 1/2, 1/4 or 1/8 size, far cheaper) when the resize halves it or more: that stays
 * sharp's. Below that it decodes at full size, which libjpeg does in about half the time with the
 * same pixels (tests/image/preprocess-libjpeg.test.ts).
 */
function resizesFromLibjpeg(input: ImageInput, target: Size): boolean {
  const shrinksOnLoad = target.width * 2 <= input.width || target.height * 2 <= input.height;
  return input.decodableByLibjpeg && !shrinksOnLoad;
}

/** The pipeline a resize to `target` starts from: libjpeg's decode where resizesFromLibjpeg says so. */
async function resizeSource(input: ImageInput, target: Size): Promise<{ from: Sharp; decoded: boolean }> {
  if (!resizesFromLibjpeg(input, target)) return { from: input.analysisPipeline(), decoded: false };
  const rgb = await input.analysisRgb();
  return { from: sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: rgb.channels } }), decoded: true };
}

/**
 * sharp's resize by `shrink` (and the `window` of it), computed by cvserve's addon from libjpeg's
 * decode where it gives sharp's pixels (reduce.ts); null where sharp has to do it.
 */
async function reduceFromLibjpeg(input: ImageInput, target: Size, shrink: Shrink, kernel: Kernel, window?: Window): Promise<RawImage | null> {
  const size = reducedSize(input, shrink);
  if (size.width !== target.width || size.height !== target.height) return null;
  if (!resizesFromLibjpeg(input, target) || !reducesLikeSharp(input, shrink, kernel)) return null;
  return fromLibjpeg(
    input,
    () => reduceJpeg(input.bytes, input, shrink, kernel, window),
    (rgb) => reduce(rgb, shrink, kernel, window),
  );
}

/**
 * The addon's resize of the input's libjpeg decode: from that decode where something already asked
 * for it, else decoded and resized in one call (`fromJpeg`). Where libjpeg refuses the file, the
 * decode that stands (libjpeg or sharp) is resized instead.
 */
async function fromLibjpeg(input: ImageInput, fromJpeg: () => Promise<RawImage | null>, fromPixels: (rgb: RawImage) => Promise<RawImage | null>): Promise<RawImage | null> {
  const decoded = input.analysisRgbIfDecoded();
  if (decoded) return fromPixels(await decoded);
  return (await input.decoding(fromJpeg)) ?? fromPixels(await input.analysisRgb());
}

/**
 * The image resized to exactly `to` (sharp's `fit: 'fill'`). From libjpeg's decode, cvserve's addon
 * computes sharp's pixels where it can: a JPEG that grows on both sides is enlarged (enlarge.ts, a
 * fifth of the CPU), one that shrinks by less than 2x is reduced (reduce.ts, half).
 */
async function resizeTo(input: ImageInput, to: Size, kernel: Kernel): Promise<{ data: Uint8Array; width: number; height: number }> {
  if (input.decodableByLibjpeg && enlargesLikeSharp(input, to, kernel)) {
    const enlarged = await fromLibjpeg(
      input,
      () => enlargeJpeg(input.bytes, input, to),
      (rgb) => enlarge(rgb, to),
    );
    if (enlarged) return enlarged;
  }
  const reduced = await reduceFromLibjpeg(input, to, { h: input.width / to.width, v: input.height / to.height }, kernel);
  if (reduced) return reduced;
  return rawRgb(input, (await resizeSource(input, to)).from.resize(to.width, to.height, { fit: 'fill', kernel }));
}

/**
 * sharp's `outside` fit (the shorter side becomes `shorterSide`, the other keeps the aspect ratio),
 * then the centre `size`. From decoded pixels, whose resized size resizeTarget gives exactly, the
 * crop is taken inside the resize, so only that part of it is computed (the same pixels, a third
 * less resizing for a 4:3 photo): by cvserve's addon for a reduce below 2x (reduce.ts), else by
 * libvips. After a shrink on load the size is only known from sharp's answer.
 */
async function centreCrop(input: ImageInput, resize: Extract<ResizeSpec, { mode: 'shorter-side-center-crop' }>, size: Size): Promise<PreparedImage> {
  const source = { width: input.width, height: input.height };
  const { width: tw, height: th } = size;
  const target = resizeTarget(resize, source, size);
  const origin = (r: Size) => ({ x: Math.floor((r.width - tw) / 2), y: Math.floor((r.height - th) / 2) });
  const tooSmall = (r: Size) => new Error(`shorterSide ${resize.shorterSide} gives ${r.width}x${r.height}, smaller than the crop ${tw}x${th}`);
  const transform = (r: Size, x: number, y: number): InputTransform => ({ scaleX: r.width / source.width, scaleY: r.height / source.height, offsetX: -x, offsetY: -y, source });
  if (target.width >= tw && target.height >= th) {
    // sharp's `outside` fit shrinks both sides by the smaller of the two ratios.
    const ratio = Math.min(source.width / resize.shorterSide, source.height / resize.shorterSide);
    const { x, y } = origin(target);
    const reduced = await reduceFromLibjpeg(input, target, { h: ratio, v: ratio }, resize.kernel, { left: x, top: y, width: tw, height: th });
    if (reduced) return { rgb: reduced.data, width: tw, height: th, transform: transform(target, x, y) };
  }
  const { from, decoded } = await resizeSource(input, target);
  const resizing = from.resize(resize.shorterSide, resize.shorterSide, { fit: 'outside', kernel: resize.kernel });
  if (decoded) {
    if (target.width < tw || target.height < th) throw tooSmall(target);
    const { x, y } = origin(target);
    const cropped = await rawRgb(input, resizing.extract({ left: x, top: y, width: tw, height: th }));
    return { rgb: cropped.data, width: tw, height: th, transform: transform(target, x, y) };
  }
  const resized = await rawRgb(input, resizing);
  if (resized.width < tw || resized.height < th) throw tooSmall(resized);
  const { x, y } = origin(resized);
  const rgb = new Uint8Array(tw * th * 3);
  blit(resized.data, resized.width, x, y, tw, th, rgb, tw, 0, 0);
  return { rgb, width: tw, height: th, transform: transform(resized, x, y) };
}

/** Copies a w×h window at (x, y) of an RGB image into (dx, dy) of a larger RGB canvas. */
function blit(src: Uint8Array, srcWidth: number, x: number, y: number, w: number, h: number, dst: Uint8Array, dstWidth: number, dx: number, dy: number): void {
  for (let row = 0; row < h; row++) {
    const from = ((y + row) * srcWidth + x) * 3;
    dst.set(src.subarray(from, from + w * 3), ((dy + row) * dstWidth + dx) * 3);
  }
}

/**
 * Resizes (and crops or pads) the input image to the model's input size, as the manifest says.
 * Pixels are read as stored (an embedded ICC profile ignored), as the models' training pipelines
 * (PIL, cv2) read them; for an image carrying a profile that halves the decode (19 -> 9 ms CPU
 * for test_face_processing.jpg, identical pixels for its sRGB profile).
 */
export async function prepareImage(input: ImageInput, resize: ResizeSpec, size: Size): Promise<PreparedImage> {
  const source = { width: input.width, height: input.height };
  const { width: tw, height: th } = size;
  switch (resize.mode) {
    case 'shorter-side-center-crop':
      return centreCrop(input, resize, size);
    case 'letterbox': {
      const r = Math.min(tw / source.width, th / source.height);
      const { width: w, height: h } = resizeTarget(resize, source, size);
      // Already the size wanted (a frame at a size the model also runs at): decoded, not resampled.
      const same = w === source.width && h === source.height;
      const resized = same ? await input.analysisRgb() : await resizeTo(input, { width: w, height: h }, resize.kernel);
      const dx = resize.align === 'center' ? Math.floor((tw - w) / 2) : 0;
      const dy = resize.align === 'center' ? Math.floor((th - h) / 2) : 0;
      // Nothing to pad (a square image for a square input): the resized pixels are the input.
      const fills = w !== tw || h !== th;
      const rgb = fills ? new Uint8Array(tw * th * 3).fill(resize.fill) : resized.data;
      if (fills) blit(resized.data, w, 0, 0, w, h, rgb, tw, dx, dy);
      // One ratio for both axes, as the detector's own post-processing divides by it.
      const transform = { scaleX: r, scaleY: r, offsetX: dx, offsetY: dy, source };
      return same && !fills ? { rgb, width: tw, height: th, transform, shared: true } : { rgb, width: tw, height: th, transform };
    }
    case 'stretch': {
      const resized = await resizeTo(input, size, resize.kernel);
      return {
        rgb: resized.data,
        width: tw,
        height: th,
        transform: { scaleX: tw / source.width, scaleY: th / source.height, offsetX: 0, offsetY: 0, source },
      };
    }
  }
}
