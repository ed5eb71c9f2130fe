import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';

/**
 * Loads an OpenCV wasm module, one of two builds:
 * - 'simd': cvserve's own OpenCV.js (vendor/opencv/, built by scripts/build-opencv-js.sh: OpenCV
 *   4.10 with WebAssembly SIMD, only the functions cvserve calls). The default: same answers, faster.
 * - 'npm': @techstark/opencv-js 4.12 from npm, no SIMD. The fallback.
 *
 * Thenables: the npm module object is a thenable whose `then` hands back the module itself, so
 * awaiting it (or returning it from an async function) spins forever: wait for
 * onRuntimeInitialized and delete `then` first. The own build's factory (Emscripten 3.1.6) returns
 * a real Promise of the module; a `then` on the module, if any, is deleted the same way.
 */
export type CV = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export type OpenCvBuild = 'simd' | 'npm';
export const OPENCV_BUILDS: readonly OpenCvBuild[] = ['simd', 'npm'];

export interface LoadOpenCvOptions {
  /**
   * Run a few small Canny and Haar detections before returning, so the first requests do not run
   * in V8's baseline wasm tier (the first Haar call about 2x slower, see WARM_UP_ROUNDS). Default true.
   */
  warmUp?: boolean;
  /** Where the SIMD build's files are (default: vendorOpenCvDir()); for checking a fresh build. */
  dir?: string;
}

/** vendor/opencv/ of the checkout or install this file belongs to (src/… under tsx, dist/src/… compiled), if shipped. */
export function findVendorOpenCvDir(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'vendor', 'opencv');
    if (existsSync(path.join(candidate, 'build-info.json'))) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

export function vendorOpenCvDir(): string {
  const dir = findVendorOpenCvDir();
  if (!dir) throw new Error('the SIMD OpenCV build (vendor/opencv/) is not shipped with this install: ship the folder, or choose the npm build');
  return dir;
}

/**
 * Loads the chosen build and (by default) warms it up. A caller that names no build gets the SIMD
 * build when vendor/opencv/ is shipped, else the npm one; a caller that names 'simd' gets it or an error.
 */
export async function loadOpenCv(build?: OpenCvBuild, options: LoadOpenCvOptions = {}): Promise<CV> {
  const chosen = chooseOpenCvBuild(build, options);
  const cv = chosen === 'simd' ? await loadSimd(options.dir ?? vendorOpenCvDir()) : await loadNpm();
  if (options.warmUp ?? true) warmUpOpenCv(cv);
  return cv;
}

/** The build loadOpenCv loads for `build` (unset: the SIMD build when shipped, else npm's). */
export function chooseOpenCvBuild(build?: OpenCvBuild, options: LoadOpenCvOptions = {}): OpenCvBuild {
  return build ?? (options.dir || findVendorOpenCvDir() ? 'simd' : 'npm');
}

async function loadNpm(): Promise<CV> {
  const mod = (await import('@techstark/opencv-js')) as { default: CV };
  const cv = mod.default;
  if (!cv.Mat) {
    await new Promise<void>((resolve) => {
      cv.onRuntimeInitialized = () => resolve();
    });
  }
  delete cv.then;
  return cv;
}

async function loadSimd(dir: string): Promise<CV> {
  // The glue is CommonJS (module.exports = factory); the wasm is stored brotli-compressed and
  // handed over as wasmBinary, so the glue never looks for a file (or fetch()es a path under Node 20).
  const factory = createRequire(import.meta.url)(path.join(dir, 'opencv-simd.cjs')) as (module: object) => Promise<CV>;
  const wasmBinary = brotliDecompressSync(readFileSync(path.join(dir, 'opencv-simd.wasm.br')));
  // Emscripten 3.1.6: a real Promise of the module, which has no `then` of its own (rejects if the wasm aborts).
  const cv = await factory({ wasmBinary, print: () => {}, printErr: () => {} });
  delete cv.then;
  return cv;
}

/** A 20×20 one-stage Haar cascade: enough to run detectMultiScale's code (integral images, resizes, the stump evaluator, grouping). */
const WARM_UP_CASCADE = `<?xml version="1.0"?>
<opencv_storage>
<cascade>
  <stageType>BOOST</stageType>
  <featureType>HAAR</featureType>
  <height>20</height>
  <width>20</width>
  <stageParams><maxWeakCount>2</maxWeakCount></stageParams>
  <featureParams><maxCatCount>0</maxCatCount></featureParams>
  <stageNum>1</stageNum>
  <stages>
    <_>
      <maxWeakCount>2</maxWeakCount>
      <stageThreshold>1.5</stageThreshold>
      <weakClassifiers>
        <_><internalNodes>0 -1 0 4.e-03</internalNodes><leafValues>-0.8 0.8</leafValues></_>
        <_><internalNodes>0 -1 1 1.e-03</internalNodes><leafValues>-0.6 0.6</leafValues></_>
      </weakClassifiers>
    </_>
  </stages>
  <features>
    <_><rects><_>2 4 16 6 -1.</_><_>2 7 16 3 2.</_></rects></_>
    <_><rects><_>4 2 6 16 -1.</_><_>7 2 3 16 2.</_></rects><tilted>0</tilted></_>
  </features>
</cascade>
</opencv_storage>
`;

/**
 * Measured in fresh processes (SIMD build, median of 5): with no warm-up the first Haar face call
 * on 640×482 took 297 ms against 150 steady, the first Canny 30 ms against 3-6; after 10 rounds
 * 183 ms, after 40 rounds 159 ms (Canny steady from 10). 40 rounds cost about 0.2-0.3 s per worker.
 */
export const WARM_UP_ROUNDS = 40;

/**
 * Runs the kernels cvserve uses on a small synthetic image until V8 has compiled them with its
 * optimizing tier. Leaves nothing behind in the module (every Mat freed, the cascade file removed).
 */
export function warmUpOpenCv(cv: CV, rounds = WARM_UP_ROUNDS): void {
  const width = 160;
  const height = 120;
  const src = new cv.Mat(height, width, cv.CV_8UC3);
  const gray = new cv.Mat();
  const edges = new cv.Mat();
  const rects = new cv.RectVector();
  const name = 'cvserve-warm-up-cascade.xml';
  const classifier = new cv.CascadeClassifier();
  try {
    // Blocks, stripes and a ramp: edges for Canny, contrast for the Haar features.
    const data: Uint8Array = src.data;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v = ((x >> 3) + (y >> 3)) & 1 ? 200 : (x * 7 + y * 3) & 0xff;
        const i = (y * width + x) * 3;
        data[i] = v;
        data[i + 1] = (v + y) & 0xff;
        data[i + 2] = (v * 3 + x) & 0xff;
      }
    }
    cv.FS_createDataFile('/', name, new TextEncoder().encode(WARM_UP_CASCADE), true, false, false);
    let loaded = false;
    try {
      loaded = classifier.load(name);
    } finally {
      cv.FS_unlink(`/${name}`);
    }
    const min = new cv.Size(20, 20);
    const max = new cv.Size(0, 0);
    for (let i = 0; i < rounds; i++) {
      cv.cvtColor(src, gray, cv.COLOR_RGB2GRAY);
      cv.Canny(gray, edges, 100, 200);
      if (loaded) classifier.detectMultiScale(gray, rects, 1.1, 3, 0, min, max);
    }
  } finally {
    classifier.delete();
    src.delete();
    gray.delete();
    edges.delete();
    rects.delete();
  }
}
