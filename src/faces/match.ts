import { DESCRIPTOR_LENGTH, type GallerySnapshot } from './gallery.js';

/**
 * Recognition: nearest neighbour over the gallery's descriptors by Euclidean distance, and a
 * calibrated confidence for it.
 *
 * Measured with face-api's dlib ResNet on test_face_processing.jpg (17 faces of ~30 px) against
 * flipped copies rescaled 0.8-2x and against crops of each face: the same person is at 0.07-0.35,
 * the nearest different person at 0.51 or more (0.55 within the original photo, median 0.77).
 * The default threshold 0.45 sits between them, nearer the strangers' side than dlib's usual 0.6
 * because these small faces pack different people closer.
 *
 * The confidence is a logistic curve of the distance, placed so the threshold maps to 0.67 (the
 * `min_confidence` DeepStack clients send by default, so a client that sends none gets the
 * measured threshold) and with a slope of CONFIDENCE_SCALE (0.06) distance per unit of log-odds:
 * the farthest same-person pair measured (0.35) comes out at 0.91, the nearest stranger (0.51) at
 * 0.43 (below deepstack-python's default 0.45), a typical stranger (0.77) at 0.01.
 */
export const DEFAULT_MATCH_THRESHOLD = 0.45;
/** DeepStack's default `min_confidence` for face recognition; the threshold distance maps to it. */
export const DEFAULT_MIN_CONFIDENCE = 0.67;
/** Distance per unit of log-odds in the confidence curve. */
export const CONFIDENCE_SCALE = 0.06;

const LOGIT_AT_THRESHOLD = Math.log(DEFAULT_MIN_CONFIDENCE / (1 - DEFAULT_MIN_CONFIDENCE));

/** Calibrated confidence (0..1) that a face at `distance` is the same person; `threshold` maps to 0.67. */
export function distanceToConfidence(distance: number, threshold = DEFAULT_MATCH_THRESHOLD): number {
  const mid = threshold + CONFIDENCE_SCALE * LOGIT_AT_THRESHOLD;
  return 1 / (1 + Math.exp((distance - mid) / CONFIDENCE_SCALE));
}

/** The distance at which the confidence is `confidence` (the inverse of distanceToConfidence). */
export function confidenceToDistance(confidence: number, threshold = DEFAULT_MATCH_THRESHOLD): number {
  if (confidence <= 0) return Number.POSITIVE_INFINITY;
  if (confidence >= 1) return Number.NEGATIVE_INFINITY;
  const mid = threshold + CONFIDENCE_SCALE * LOGIT_AT_THRESHOLD;
  return mid - CONFIDENCE_SCALE * Math.log(confidence / (1 - confidence));
}

/** Euclidean distance between two descriptors (b read at `offset` of a flat array). */
export function descriptorDistance(a: Float32Array, b: Float32Array, offset = 0): number {
  let sum = 0;
  for (let i = 0; i < DESCRIPTOR_LENGTH; i++) {
    const d = a[i]! - b[offset + i]!;
    sum += d * d;
  }
  return Math.sqrt(sum);
}

export interface Nearest {
  userid: string;
  distance: number;
}

/** The gallery's nearest descriptor to `descriptor` (so its user), or undefined for an empty gallery. */
export function nearestUser(snapshot: GallerySnapshot, descriptor: Float32Array): Nearest | undefined {
  let best = -1;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (let i = 0; i < snapshot.userids.length; i++) {
    const d = descriptorDistance(descriptor, snapshot.vectors, i * DESCRIPTOR_LENGTH);
    if (d < bestDistance) {
      bestDistance = d;
      best = i;
    }
  }
  return best < 0 ? undefined : { userid: snapshot.userids[best]!, distance: bestDistance };
}

export interface MatchOptions {
  /** Distance that maps to confidence 0.67 (CVSERVE_FACE_MATCH_THRESHOLD). */
  threshold?: number;
  /** A face is its nearest user when the confidence reaches this (DeepStack's min_confidence; default 0.67). */
  minConfidence?: number;
}

export interface FaceMatch {
  /** The recognised user, or undefined for a stranger (DeepStack answers "unknown"). */
  userid: string | undefined;
  /** Confidence of the nearest user (also for a stranger: how close the nearest one was); 0 for an empty gallery. */
  confidence: number;
  /** Distance to the nearest descriptor (Infinity for an empty gallery). */
  distance: number;
}

/** Who a face is: its nearest user when close enough, else a stranger. */
export function matchFace(snapshot: GallerySnapshot, descriptor: Float32Array, options: MatchOptions = {}): FaceMatch {
  const threshold = options.threshold ?? DEFAULT_MATCH_THRESHOLD;
  const minConfidence = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;
  const nearest = nearestUser(snapshot, descriptor);
  if (!nearest) return { userid: undefined, confidence: 0, distance: Number.POSITIVE_INFINITY };
  const confidence = distanceToConfidence(nearest.distance, threshold);
  // Compared as distances, so the default min_confidence accepts exactly distance <= threshold.
  const accepted = nearest.distance <= confidenceToDistance(minConfidence, threshold) + 1e-9;
  return { userid: accepted ? nearest.userid : undefined, confidence, distance: nearest.distance };
}

/** /match: the calibrated confidence that two descriptors are the same person. */
export function similarity(a: Float32Array, b: Float32Array, threshold = DEFAULT_MATCH_THRESHOLD): number {
  return distanceToConfidence(descriptorDistance(a, b), threshold);
}
