import type { AnyResource } from './contract.js';
import { createCannyResource } from './canny.js';
import { createCatDetectionResource } from './catdetection.js';
import { createCatFaceDetectionResource } from './catfacedetection.js';
import { createDetectResource } from './detect.js';
import { createFaceDetectionResource } from './facedetection.js';
import { createFaceRecognitionResource } from './facerecognition.js';
import { createPredictResource } from './predict.js';
import { createUpscaleResource } from './upscale.js';

/** The built-in capabilities, in the order they are listed (declarations: the app defines them). Each becomes the route `/${name}`. */
export function builtinResources(): AnyResource[] {
  return [
    createCannyResource(),
    createDetectResource(),
    createCatFaceDetectionResource(),
    createPredictResource(),
    createCatDetectionResource(),
    createUpscaleResource(),
    createFaceDetectionResource(),
    createFaceRecognitionResource(),
  ];
}
