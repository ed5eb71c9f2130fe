import type { Sharp } from 'sharp';

/** Image formats accepted as input (decided from the bytes) and produced as output. */
export const INPUT_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];
export const OUTPUT_FORMATS = ['jpeg', 'png', 'webp'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Interleaved 8-bit pixels. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** A box in original-image pixel coordinates, [x1, y1, x2, y2], with an optional caption for drawing. */
export interface DrawBox {
  box: [number, number, number, number];
  label?: string;
}

/**
 * A validated input image: the original bytes (type checked from the magic number, dimensions
 * checked against the pixel limit), decoded lazily so a resource that resizes first can let sharp
 * shrink on load instead of decoding at full size.
 */
export interface ImageInput {
  readonly bytes: Buffer;
  readonly format: InputFormat;
  /**
   * Whether cvserve's libjpeg addon decodes this image as stored: an upright gray or YCbCr JPEG,
   * with the addon chosen (CVSERVE_JPEG_DECODER) and built. It may still refuse the file (corrupt data).
   */
  readonly decodableByLibjpeg: boolean;
  /** Dimensions after EXIF orientation. */
  readonly width: number;
  readonly height: number;
  /** The most memory a decode of this image holds at once, estimated from the header (decode-memory.ts). */
  readonly decodeBytes: number;
  /**
   * Runs one decode of this image (a pipeline() or analysisPipeline() run to pixels, or the libjpeg
   * addon's) holding decodeBytes of the process's decode budget, waiting for room first. The
   * decodes below (rgb() and the like) hold it themselves; `work` must not call them.
   */
  decoding<T>(work: () => Promise<T>): Promise<T>;
  /** A fresh sharp pipeline over the bytes: pixel limit set, first frame only, EXIF orientation applied. Run it to pixels inside decoding(). */
  pipeline(): Sharp;
  /** The whole image as RGB (alpha flattened away), decoded once and cached. */
  rgb(): Promise<RawImage>;
  /**
   * pipeline() reading the pixel values as stored, an embedded ICC profile ignored: what OpenCV's
   * imdecode (and so the Python services) sees, and for images carrying a profile about half the
   * decode time (no colour transform). For analysis (edges, detection), not for images shown back.
   */
  analysisPipeline(): Sharp;
  /** analysisPipeline() as RGB, decoded once and cached. */
  analysisRgb(): Promise<RawImage>;
  /** analysisRgb()'s decode where it was already asked for, else undefined (nothing is decoded). */
  analysisRgbIfDecoded(): Promise<RawImage> | undefined;
  /**
   * analysisRgb() handed over: the caller may move its pixels to a worker (unusable here after),
   * and the input forgets them, so a later analysisRgb() decodes again.
   */
  takeAnalysisRgb(): Promise<RawImage>;
}
