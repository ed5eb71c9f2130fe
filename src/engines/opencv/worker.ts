import { loadOpenCv, type CV } from './load.js';
import type { CannyResult, CannyTask, OpenCvTask } from './protocol.js';

// One OpenCV instance per worker thread, loaded once when the worker starts.
const cvReady: Promise<{ cv: CV }> = loadOpenCv().then((cv) => ({ cv }));

function canny(cv: CV, task: CannyTask): CannyResult {
  const { image } = task;
  const type = image.channels === 1 ? cv.CV_8UC1 : image.channels === 3 ? cv.CV_8UC3 : cv.CV_8UC4;
  const src = new cv.Mat(image.height, image.width, type);
  const gray = new cv.Mat();
  const edges = new cv.Mat();
  try {
    src.data.set(image.data);
    if (image.channels === 1) src.copyTo(gray);
    else cv.cvtColor(src, gray, image.channels === 3 ? cv.COLOR_RGB2GRAY : cv.COLOR_RGBA2GRAY);
    cv.Canny(gray, edges, task.threshold1, task.threshold2);
    // slice() copies out of the wasm heap into a buffer we can transfer.
    return { image: { data: edges.data.slice(), width: image.width, height: image.height, channels: 1 } };
  } finally {
    src.delete();
    gray.delete();
    edges.delete();
  }
}

export default async function handle(task: OpenCvTask): Promise<unknown> {
  const { cv } = await cvReady;
  switch (task.op) {
    case 'canny':
      return canny(cv, task);
    default:
      throw new Error(`unknown OpenCV op ${(task as { op: string }).op}`);
  }
}
