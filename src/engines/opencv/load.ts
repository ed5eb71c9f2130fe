/**
 * Loads the OpenCV wasm module. The Emscripten module object is a thenable whose `then` hands back
 * the module itself, so awaiting it (or returning it from an async function) spins forever. Wait
 * for onRuntimeInitialized, delete `then`, and only then let the object travel through promises.
 */
export type CV = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export async function loadOpenCv(): Promise<CV> {
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
