import { jpegAddon } from './jpeg-decoder.js';
import type { RawImage } from './types.js';

interface Size {
  width: number;
  height: number;
}

/** A window of the reduced image: what sharp's `extract` after the resize would keep. */
export interface Window extends Size {
  left: number;
  top: number;
}

/** How much sharp shrinks each side: the input side over the target side. */
export interface Shrink {
  h: number;
  v: number;
}

/** The addon's kernel numbers (native/jpeg/reduce.c). */
const KERNELS: Readonly<Record<string, number>> = { linear: 1, cubic: 2, mitchell: 3, lanczos2: 4, lanczos3: 5 };

/** vips_resize's reduce gap: at 2 x gap or more it box-shrinks first, which the addon leaves to sharp. */
const REDUCE_GAP = 2;

/** The side libvips reduces `side` to for sharp's `shrink` (vips_resize asks for 1 / (1 / shrink)). */
export function reducedSide(side: number, shrink: number): number {
  return Math.floor(side / (1 / (1 / shrink)) + 0.5);
}

/** The size libvips reduces `from` to: a side whose shrink is 1 stays. */
export function reducedSize(from: Size, shrink: Shrink): Size {
  return { width: shrink.h === 1 ? from.width : reducedSide(from.width, shrink.h), height: shrink.v === 1 ? from.height : reducedSide(from.height, shrink.v) };
}

/**
 * Whether `reduce` stands in for sharp here: a kernel the addon computes, neither side growing,
 * at least one shrinking, and by less than libvips' box-shrinking threshold.
 */
export function reducesLikeSharp(from: Size, shrink: Shrink, kernel: string): boolean {
  if (!(kernel in KERNELS) || (shrink.h === 1 && shrink.v === 1)) return false;
  const fits = (side: number, s: number) => s === 1 || (s > 1 && 1 / s < 1 && reducedSide(side, s) >= 1 && Math.floor(side / reducedSide(side, s) / REDUCE_GAP) <= 1);
  return fits(from.width, shrink.h) && fits(from.height, shrink.v);
}

/**
 * Downsizing without libvips' pipeline: cvserve's addon (native/jpeg/reduce.c) computes libvips'
 * reduce exactly as libvips does, so the pixels are sharp's `resize(...)` (and `extract(window)`
 * after it) for half the CPU, and none of it on the main thread: the classifier's 640x482 photo
 * to its 224x224 crop in 0.7 ms instead of 1.5 (tests/image/reduce.test.ts). Null where the addon
 * is not built or declines (the caller then asks sharp).
 */
export async function reduce(image: RawImage, shrink: Shrink, kernel: string, window?: Window): Promise<RawImage | null> {
  if (image.channels !== 3) return null;
  return reduceWith((addon) => addon.reduceResize, image.data, image, shrink, kernel, window);
}

/**
 * `reduce` of a JPEG's libjpeg decode (decodeJpegRgb's pixels), decoded and reduced in one call on
 * libuv's thread pool: the full-size pixels never become a JavaScript buffer (a 640x482 photo's
 * 925 KB, which V8 counts towards its next collection). Null where the addon is not built, libjpeg
 * refuses the file, or the reduce is not one it computes.
 */
export async function reduceJpeg(jpeg: Uint8Array, size: Size, shrink: Shrink, kernel: string, window?: Window): Promise<RawImage | null> {
  return reduceWith((addon) => addon.reduceJpeg, jpeg, size, shrink, kernel, window);
}

type AddonReduce = NonNullable<NonNullable<ReturnType<typeof jpegAddon>>['reduceResize']>;

async function reduceWith(pick: (addon: NonNullable<ReturnType<typeof jpegAddon>>) => AddonReduce | undefined, src: Uint8Array, size: Size, shrink: Shrink, kernel: string, window?: Window): Promise<RawImage | null> {
  const addon = jpegAddon();
  const run = addon && pick(addon);
  const k = KERNELS[kernel];
  if (!run || k === undefined) return null;
  const w = window ?? { left: 0, top: 0, ...reducedSize(size, shrink) };
  const data = Buffer.allocUnsafeSlow(w.width * w.height * 3);
  try {
    await run(src, size.width, size.height, data, shrink.h, shrink.v, k, w.left, w.top, w.width, w.height);
  } catch {
    return null;
  }
  return { data, width: w.width, height: w.height, channels: 3 };
}
