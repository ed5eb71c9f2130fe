import { CASCADES } from '../engines/opencv/cascades.js';
import type { AnyResource } from './contract.js';
import { HaarResource } from './haar.js';

/** /catfacedetection: cat faces with OpenCV's extended frontal cat-face Haar cascade, as the Python cat API did. */
export function createHaarCatFaceResource(): AnyResource {
  return new HaarResource({
    name: 'catfacedetection',
    summary: 'Cat face detection (Haar cascade)',
    description:
      'Finds frontal cat faces with haarcascade_frontalcatface_extended.xml: RGB→gray, then detectMultiScale(scaleFactor, minNeighbors, minSize). ' +
      'Answers {"status": "ok", "result": [{"box": [x1, y1, x2, y2]}]} in original-image pixels, or the image with the boxes drawn (draw=true or Accept: image/*). ' +
      'On large photos, maxSide (e.g. 800) is much faster.',
    cascade: CASCADES.frontalCatFace,
  });
}
