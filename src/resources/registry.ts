import type { AnyResource } from './contract.js';
import { createCannyResource } from './canny.js';
import { createObjectDetectionResource } from './object-detection.js';
import { createHaarCatFaceResource } from './haar-cat-faces.js';
import { createHaarFaceResource } from './haar-faces.js';
import { createFaceDetectionResource } from './facedetection.js';
import { createFaceRecognitionResource } from './facerecognition.js';
import { createPredictResource } from './predict.js';
import { createUpscaleResource } from './upscale.js';
import { createAlprResource } from './alpr.js';
import { createOcrResource } from './ocr.js';
import { TextModels } from './text/text-models.js';

/** The built-in capabilities, in the order they are listed (declarations: the app defines them). Each becomes the route `/${name}`. */
export function builtinResources(): AnyResource[] {
  // /ocr and /alpr share one text detector and recognizer (loaded once).
  const text = new TextModels('ocr');
  return [
    createCannyResource(),
    createHaarFaceResource(),
    createHaarCatFaceResource(),
    createPredictResource(),
    createObjectDetectionResource(),
    createUpscaleResource(),
    createFaceDetectionResource(),
    createFaceRecognitionResource(),
    createOcrResource(text),
    createAlprResource(text),
  ];
}
