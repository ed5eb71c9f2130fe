import type { RawImage } from '../../image/types.js';
import type { ScaleRange } from './split.js';

/** Who computes an edge map in an OpenCV worker: cvserve's addon (native/jpeg/canny.c) or OpenCV.js. */
export type CannyEngine = 'native' | 'opencv';

/** Messages between the main thread and an OpenCV worker. Pixels travel as transferable buffers. */
export interface CannyTask {
  op: 'canny';
  image: RawImage;
  threshold1: number;
  threshold2: number;
}

/**
 * Canny from JPEG bytes to JPEG bytes: the worker decodes into its own heap and encodes the edge
 * map there, so neither the pixels nor the map cross threads (and the main thread's garbage
 * collector never sees them).
 */
export interface CannyJpegTask {
  op: 'canny-jpeg';
  jpeg: Uint8Array;
  width: number;
  height: number;
  threshold1: number;
  threshold2: number;
  quality: number;
}

/** The edge map as JPEG, or null when the worker could not decode the file (the caller decodes it another way). */
export interface CannyJpegResult {
  jpeg: Uint8Array | null;
}

/** A box in pixel coordinates: [x1, y1, x2, y2] with x2 = x + width, y2 = y + height. */
export type Box = [number, number, number, number];

export interface DetectOptions {
  /** Cascade file name in the models directory, e.g. haarcascade_frontalface_alt.xml. */
  cascade: string;
  scaleFactor: number;
  minNeighbors: number;
  /** Smallest object searched for, in pixels of the image sent (square). */
  minSize: number;
  /** Largest window searched (square); 0 or unset: up to the image size. Used by the scale split. */
  maxSize?: number;
  /** The cascade's detection window, when the caller knows it: lets the first detection be split too. */
  window?: [number, number];
}

/** Haar cascade detection on an RGB (3), RGBA (4) or gray (1) image. */
export interface DetectTask extends DetectOptions {
  op: 'detect';
  image: RawImage;
  /**
   * Scale ranges searched one detectMultiScale call after another on the one gray copy, every call's
   * boxes returned together (with minNeighbors 0, raw candidates for the caller to group once).
   * Unset: one call over minSize..maxSize.
   */
  ranges?: ScaleRange[];
}

/** Which OpenCV build the worker loaded, as the loaded module itself reports it. */
export interface InfoTask {
  op: 'info';
}

export interface OpenCvInfo {
  /** The build the worker chose ('simd': vendor/opencv, 'npm': @techstark/opencv-js). */
  build: 'simd' | 'npm';
  /** From the module's getBuildInformation(): "4.10.0" for the SIMD build, "4.12.0" for npm's. */
  version: string;
  /** Whether the module was compiled with WebAssembly SIMD (its build information's CPU features). */
  simd: boolean;
}

export type OpenCvTask = CannyTask | CannyJpegTask | DetectTask | InfoTask;

export interface CannyResult {
  image: RawImage;
}

export interface DetectResult {
  boxes: Box[];
  /** Time spent in detectMultiScale alone, for logs and benchmarks. */
  detectMs: number;
  /** The cascade's detection window [width, height], when the XML declares it (for splitting by scale). */
  window?: [number, number];
  /** How many workers shared this detection (a scale split); absent for one. */
  parts?: number;
  /** How many detectMultiScale calls the worker made for its task (its ranges); absent for one. */
  calls?: number;
}
