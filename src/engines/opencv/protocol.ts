import type { RawImage } from '../../image/types.js';

/** Messages between the main thread and an OpenCV worker. Pixels travel as transferable buffers. */
export interface CannyTask {
  op: 'canny';
  image: RawImage;
  threshold1: number;
  threshold2: number;
}

export type OpenCvTask = CannyTask;

export interface CannyResult {
  image: RawImage;
}
