import { DESCRIPTOR_LENGTH, type GallerySnapshot } from './gallery.js';

/**
 * Recognition: nearest neighbour over the gallery's descriptors by Euclidean distance, and a
 * calibrated confidence for it.
 *
 * Calibrated on real second photos (data/faces/, README "Faces"): genuinely different photos of
 * the same people (other days, light, angles; one of two people together), from
 * ageitgey/face_recognition's examples. Tuned part (Barack Obama 5 photos, Joe Biden 3; strangers:
 * each other, Eileen Collins, the 17 people of test_face_processing.jpg): the same person at
 * 0.34-0.505, the nearest stranger at 0.613 (a 30 px face of the group photo), 0.79 between the
 * portraits. Held out, never tuned on (4 more people, 11 photos): the same person at 0.344-0.556,
 * strangers at 0.687 or more.
 *
 * Faces the detector saw at SMALL_FACE_PX or more use DEFAULT_MATCH_THRESHOLD 0.58 and a slope of
 * CONFIDENCE_SCALE 0.03 distance per unit of log-odds: 0.505 maps to 0.96, 0.556 to 0.82, 0.613 to
 * 0.40, 0.687 to 0.05, 0.79 to 0.002. Smaller faces (a crowd, a far camera) pack different people
 * closer (in the group photo, strangers from 0.548; crops and rescales of one face at 0.07-0.35),
 * so they keep the stricter curve measured on them: the threshold 0.13 lower (0.45) and slope 0.06.
 * Either threshold maps to 0.67, the `min_confidence` DeepStack clients send by default, so a
 * client that sends none gets the measured threshold.
 */
export const DEFAULT_MATCH_THRESHOLD = 0.58;
/** DeepStack's default `min_confidence` for face recognition; the threshold distance maps to it. */
export const DEFAULT_MIN_CONFIDENCE = 0.67;
/** Distance per unit of log-odds in the confidence curve (faces of SMALL_FACE_PX or more). */
export const CONFIDENCE_SCALE = 0.03;
/** Faces narrower than this (pixels, in the image described) use the small-face curve. */
export const SMALL_FACE_PX = 64;
/** The small-face threshold is this much below the configured one (0.45 by default). */
export const SMALL_FACE_THRESHOLD_OFFSET = 0.13;
/** Distance per unit of log-odds for small faces. */
export const SMALL_FACE_CONFIDENCE_SCALE = 0.06;

const LOGIT_AT_THRESHOLD = Math.log(DEFAULT_MIN_CONFIDENCE / (1 - DEFAULT_MIN_CONFIDENCE));

/** A distance → confidence curve: `threshold` maps to 0.67, `scale` distance per unit of log-odds. */
export interface Calibration {
  threshold: number;
  scale: number;
}

/** The curve for a face `faceWidth` pixels wide (undefined: a large face), given the configured threshold. */
export function calibrationFor(faceWidth: number | undefined, threshold = DEFAULT_MATCH_THRESHOLD): Calibration {
  if (faceWidth !== undefined && faceWidth < SMALL_FACE_PX) return { threshold: threshold - SMALL_FACE_THRESHOLD_OFFSET, scale: SMALL_FACE_CONFIDENCE_SCALE };
  return { threshold, scale: CONFIDENCE_SCALE };
}

const LARGE: Calibration = { threshold: DEFAULT_MATCH_THRESHOLD, scale: CONFIDENCE_SCALE };

/** Calibrated confidence (0..1) that a face at `distance` is the same person; the threshold maps to 0.67. */
export function distanceToConfidence(distance: number, calibration: Calibration = LARGE): number {
  const mid = calibration.threshold + calibration.scale * LOGIT_AT_THRESHOLD;
  return 1 / (1 + Math.exp((distance - mid) / calibration.scale));
}

/** The distance at which the confidence is `confidence` (the inverse of distanceToConfidence). */
export function confidenceToDistance(confidence: number, calibration: Calibration = LARGE): number {
  if (confidence <= 0) return Number.POSITIVE_INFINITY;
  if (confidence >= 1) return Number.NEGATIVE_INFINITY;
  const mid = calibration.threshold + calibration.scale * LOGIT_AT_THRESHOLD;
  return mid - calibration.scale * Math.log(confidence / (1 - confidence));
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
  /** Distance that maps to confidence 0.67 for large faces (CVSERVE_FACE_MATCH_THRESHOLD). */
  threshold?: number;
  /** A face is its nearest user when the confidence reaches this (DeepStack's min_confidence; default 0.67). */
  minConfidence?: number;
  /** Width of the face in the image described (pixels): a small face gets the stricter curve. */
  faceWidth?: number;
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
  const calibration = calibrationFor(options.faceWidth, options.threshold ?? DEFAULT_MATCH_THRESHOLD);
  const minConfidence = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;
  const nearest = nearestUser(snapshot, descriptor);
  if (!nearest) return { userid: undefined, confidence: 0, distance: Number.POSITIVE_INFINITY };
  const confidence = distanceToConfidence(nearest.distance, calibration);
  // Compared as distances, so the default min_confidence accepts exactly distance <= threshold.
  const accepted = nearest.distance <= confidenceToDistance(minConfidence, calibration) + 1e-9;
  return { userid: accepted ? nearest.userid : undefined, confidence, distance: nearest.distance };
}

/** /match: the calibrated confidence that two descriptors are the same person (the curve of the smaller face). */
export function similarity(a: Float32Array, b: Float32Array, threshold = DEFAULT_MATCH_THRESHOLD, faceWidth?: number): number {
  return distanceToConfidence(descriptorDistance(a, b), calibrationFor(faceWidth, threshold));
}
