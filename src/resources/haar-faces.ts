import { CASCADES } from '../engines/opencv/cascades.js';
import type { AnyResource } from './contract.js';
import { HaarResource } from './haar.js';

/** /detect: human faces with OpenCV's frontal-face Haar cascade, as the Python face API did. */
export function createHaarFaceResource(): AnyResource {
  return new HaarResource({
    name: 'detect',
    summary: 'Face detection (Haar cascade)',
    description:
      'Finds frontal human faces with haarcascade_frontalface_alt.xml: RGB→gray, then detectMultiScale(scaleFactor, minNeighbors, minSize). ' +
      'Answers {"status": "ok", "result": [{"box": [x1, y1, x2, y2]}]} in original-image pixels, or the image with the boxes drawn (draw=true or Accept: image/*).',
    cascade: CASCADES.frontalFace,
  });
}
