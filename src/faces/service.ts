/**
 * Face gallery operations: register, list, delete, match (several images or none per call), and
 * recognize (one image, for the /facerecognition resource), over the face engine and the gallery.
 *
 * Errors are AppErrors: BAD_PARAMETER (userid, image count), MISSING_IMAGE, NO_FACE (400), the
 * image errors of openImage (415/422/413), GALLERY_FULL (409), GALLERY_STORAGE_FULL (507),
 * GALLERY_UNAVAILABLE / QUEUE_FULL / MODEL_UNAVAILABLE (503). Each gallery call tries the database
 * itself; `status()` only reports.
 *
 * Privacy: nothing here logs; descriptors and photo bytes never leave this module except into the
 * gallery (descriptors and the photo's sha256, never the photo).
 */
import type { JpegDecoderChoice } from '../image/jpeg-decoder.js';
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';
import type { FaceBox, FaceDescription, FaceEngine } from '../engines/face/engine.js';
import { AppError } from '../errors.js';
import type { DecodeBudget } from '../image/decode-memory.js';
import { openImage, type DecodeLimits } from '../image/decode.js';
import type { ImageInput } from '../image/types.js';
import type { Readiness } from '../readiness.js';
import { checkUserid, galleryError, useridsToDelete, type FaceGallery, type GalleryCounts, type GalleryEntry, type GalleryLimits } from './gallery.js';
import { DEFAULT_MIN_CONFIDENCE, matchFace, similarity } from './match.js';
import { openGallery } from './open.js';
import { facePixels, originalBox } from './pixels.js';
import { GallerySnapshots } from './snapshots.js';

export interface RegisterImage {
  /** The form field the file came in (`image`, `image1`, ...): named in the per-file outcome. */
  field: string;
  bytes: Buffer;
}

export type RegisterStatus = 'added' | 'duplicate' | 'no face' | 'invalid image';

export interface RegisterImageOutcome {
  field: string;
  status: RegisterStatus;
  message?: string;
}

export interface RegisterResult {
  userid: string;
  /** Photos stored now. */
  added: number;
  /** Photos this user already had (same bytes), or sent twice in this call. */
  duplicates: number;
  /** One per image, in the order given. */
  images: RegisterImageOutcome[];
}

export interface GalleryUserSummary {
  userid: string;
  /** Face descriptors (one per registered photo) stored for the user. */
  photos: number;
}

export interface RecognizedFace {
  box: FaceBox;
  /** The registered user, or undefined for a stranger. */
  userid: string | undefined;
  /** Calibrated confidence that the face is its nearest user (0 with an empty gallery). */
  confidence: number;
}

/** One recognize call, for metrics: how long it took and how many faces were known / unknown. */
export interface RecognizeEvent {
  seconds: number;
  recognized: number;
  unknown: number;
}

export interface FaceServiceOptions {
  engine: FaceEngine;
  /** CVSERVE_DATA_DIR: the SQLite gallery's directory when no database URL is set. */
  dataDir: string;
  /** CVSERVE_DATABASE_URL: PostgreSQL when non-empty. */
  databaseUrl: string;
  limits: GalleryLimits;
  /** Most images per register call. */
  maxImages: number;
  /** Largest decoded image (width × height), as for every route. */
  maxPixels: number;
  /** Who decodes plain JPEGs, as for every route (default libjpeg). */
  jpegDecoder?: JpegDecoderChoice;
  /** The process's decode memory budget, as for every route. */
  decodeBudget?: DecodeBudget;
  /** Images are searched for faces at most this long a side. */
  maxSide: number;
  /** Most faces described per image. */
  maxFaces: number;
  /** Descriptor distance mapped to confidence 0.67 for faces of SMALL_FACE_PX or more (smaller ones: 0.13 less). */
  threshold: number;
  /** Opens the gallery (default: openGallery with the options above). */
  openGallery?: () => Promise<FaceGallery>;
  /**
   * After the database was found unavailable (a failed open or a failed call), calls fail fast for a
   * window that starts at a quarter of this and doubles with each failure in a row, up to this
   * (default 2000 ms); the first call after the window tries the database again.
   */
  retryMs?: number;
  now?: () => number;
}

export function faceServiceOptions(config: Config, engine: FaceEngine): FaceServiceOptions {
  return {
    engine,
    dataDir: config.dataDir,
    databaseUrl: config.databaseUrl,
    limits: { maxUsers: config.faceMaxUsers, maxDescriptorsPerUser: config.faceMaxPhotosPerUser },
    maxImages: config.faceMaxImages,
    maxPixels: config.maxPixels,
    jpegDecoder: config.jpegDecoder,
    maxSide: config.faceMaxSide,
    maxFaces: config.faceMaxFaces,
    threshold: config.faceMatchThreshold,
  };
}

const NO_FACE_MESSAGE = 'No face found in image';

export class FaceGalleryService {
  readonly engine: FaceEngine;
  private opened?: FaceGallery;
  private opening?: Promise<FaceGallery>;
  private snapshots?: GallerySnapshots;
  /** The database was found unavailable: when, how, how many times in a row, and how long calls fail fast. */
  private failure?: { at: number; error: AppError; opening: boolean; streak: number; waitMs: number };
  private closed = false;
  private readonly listeners = new Set<(event: RecognizeEvent) => void>();
  private readonly now: () => number;

  constructor(private readonly options: FaceServiceOptions) {
    this.engine = options.engine;
    this.now = options.now ?? Date.now;
  }

  /** Opens the gallery now (startup with CVSERVE_FACE_PRELOAD) instead of on first use. */
  async open(): Promise<void> {
    await this.gallery();
  }

  /**
   * Adds the face of each image to `userid` (never replacing earlier photos), in one gallery
   * transaction. Each image: header checks and pixel limit as every route, then its largest face.
   */
  async register(given: string, images: RegisterImage[], signal: AbortSignal): Promise<RegisterResult> {
    const userid = checkUserid(given);
    if (images.length === 0) throw new AppError('MISSING_IMAGE', { publicMessage: 'No image given: send one or more image files with the userid' });
    if (images.length > this.options.maxImages) {
      throw new AppError('BAD_PARAMETER', { publicMessage: `At most ${this.options.maxImages} images per register call (got ${images.length}) (CVSERVE_FACE_MAX_IMAGES)` });
    }
    const gallery = await this.gallery(); // 503 before any face work when the database is down

    const outcomes: RegisterImageOutcome[] = [];
    const entries: GalleryEntry[] = [];
    /** Per image: its entry in `entries` (if it has one), and whether it repeats an earlier file of this call. */
    const slots: { entry?: number; repeat: boolean }[] = [];
    const seen = new Map<string, number>();
    let firstInvalid: AppError | undefined;
    for (const { field, bytes } of images) {
      signal.throwIfAborted();
      const sha = createHash('sha256').update(bytes).digest('hex');
      const earlier = seen.get(sha);
      if (earlier !== undefined) {
        // Same bytes twice in one call: the same face, stored once.
        outcomes.push({ ...outcomes[earlier]!, field });
        slots.push({ entry: slots[earlier]!.entry, repeat: true });
        continue;
      }
      seen.set(sha, outcomes.length);
      let faces: FaceDescription[];
      let detected: number;
      try {
        const input = await openImage(bytes, this.imageLimits(signal));
        ({ faces, detected } = await this.describe(input, signal, { largestOnly: true }));
      } catch (err) {
        if (!isImageError(err)) throw err;
        firstInvalid ??= new AppError(err.code, { publicMessage: `${field}: ${err.publicMessage}`, detail: err.detail, cause: err });
        outcomes.push({ field, status: 'invalid image', message: err.publicMessage });
        slots.push({ repeat: false });
        continue;
      }
      if (faces.length === 0) {
        outcomes.push({ field, status: 'no face', message: NO_FACE_MESSAGE });
        slots.push({ repeat: false });
        continue;
      }
      // Faces come largest first: a photo of several people registers its largest face.
      entries.push({ descriptor: faces[0]!.descriptor, imageSha256: sha });
      slots.push({ entry: entries.length - 1, repeat: false });
      outcomes.push({ field, status: 'added', ...(detected > 1 && { message: `${detected} faces found; the largest was registered` }) });
    }

    if (entries.length === 0) {
      const noFace = outcomes.filter((o) => o.status === 'no face').map((o) => o.field);
      if (noFace.length === 0 && firstInvalid) throw firstInvalid;
      const invalid = outcomes.filter((o) => o.status === 'invalid image').map((o) => o.field);
      // One image: the words DeepStack clients know; several: which file had no face, which was no image.
      const publicMessage =
        images.length === 1
          ? NO_FACE_MESSAGE
          : `No face found in any image (no face: ${noFace.join(', ')}${invalid.length ? `; not a valid image: ${invalid.join(', ')}` : ''})`;
      throw new AppError('NO_FACE', { publicMessage });
    }
    signal.throwIfAborted();
    const stored = await this.track(gallery.add(userid, entries, this.engine.model));
    const result = outcomes.map((o, i): RegisterImageOutcome => {
      const { entry, repeat } = slots[i]!;
      if (entry === undefined) return o;
      if (!repeat && stored.outcomes[entry] === 'added') return o;
      return { field: o.field, status: 'duplicate', message: 'This photo is already registered for this user' };
    });
    return { userid, added: stored.added, duplicates: result.filter((o) => o.status === 'duplicate').length, images: result };
  }

  /** Registered users with their photo counts, by userid. */
  async list(): Promise<GalleryUserSummary[]> {
    const gallery = await this.gallery();
    const users = await this.track(gallery.list());
    return users.map((u) => ({ userid: u.userid, photos: u.descriptors }));
  }

  /** Removes a user and every descriptor of theirs (rows deleted, not flagged). 0 for an unknown user. */
  async delete(userid: string): Promise<{ deleted: number }> {
    useridsToDelete(userid);
    const gallery = await this.gallery();
    return { deleted: await this.track(gallery.delete(userid)) };
  }

  private imageLimits(signal: AbortSignal): DecodeLimits {
    return { maxPixels: this.options.maxPixels, jpegDecoder: this.options.jpegDecoder, budget: this.options.decodeBudget, signal };
  }

  /** How alike the largest faces of two images are: the calibrated confidence of recognize (0..1). */
  async match(a: Buffer, b: Buffer, signal: AbortSignal): Promise<{ similarity: number }> {
    const descriptors: Float32Array[] = [];
    const widths: number[] = [];
    const missing: string[] = [];
    for (const [name, bytes] of [['image1', a], ['image2', b]] as const) {
      signal.throwIfAborted();
      let input: ImageInput;
      try {
        input = await openImage(bytes, this.imageLimits(signal));
      } catch (err) {
        if (!isImageError(err)) throw err;
        throw new AppError(err.code, { publicMessage: `${name}: ${err.publicMessage}`, detail: err.detail, cause: err });
      }
      const face = (await this.describe(input, signal, { largestOnly: true })).faces[0];
      if (face) {
        descriptors.push(face.descriptor);
        widths.push(face.box[2] - face.box[0]);
      } else missing.push(name);
    }
    if (missing.length > 0) throw new AppError('NO_FACE', { publicMessage: `No face found in ${missing.join(' and ')}` });
    return { similarity: round3(similarity(descriptors[0]!, descriptors[1]!, this.options.threshold, Math.min(...widths))) };
  }

  /**
   * Every face of one image (largest first, at most CVSERVE_FACE_MAX_FACES) with its nearest
   * registered user when the confidence reaches `minConfidence`, else a stranger.
   */
  async recognize(input: ImageInput, options: { minConfidence?: number }, signal: AbortSignal): Promise<RecognizedFace[]> {
    const started = performance.now();
    await this.gallery();
    const snapshot = await this.track(this.snapshots!.current(this.engine.model));
    const { faces, toOriginal } = await this.describe(input, signal);
    const minConfidence = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;
    const result = faces.map((f): RecognizedFace => {
      const m = matchFace(snapshot, f.descriptor, { threshold: this.options.threshold, minConfidence, faceWidth: f.box[2] - f.box[0] });
      return { box: toOriginal(f.box), userid: m.userid, confidence: round3(m.confidence) };
    });
    const recognized = result.filter((r) => r.userid !== undefined).length;
    this.emit({ seconds: (performance.now() - started) / 1000, recognized, unknown: result.length - recognized });
    return result;
  }

  /** Whether the face routes can answer now; an unavailable gallery is retried in the background. */
  status(): Readiness {
    if (this.closed) return { ready: false, reason: 'shutting down' };
    const [pool] = this.engine.stats();
    if (pool?.startupError) return { ready: false, reason: 'face models failed to load' };
    if (this.failure) {
      if (this.now() - this.failure.at < this.failure.waitMs) return { ready: false, reason: 'face gallery unavailable' };
      // The window has passed: the next call tries the database; a failed open is retried now, in the background.
      if (this.failure.opening && !this.opening) void this.gallery().catch(() => {});
    }
    return { ready: true };
  }

  /** Users and descriptors in the gallery, or undefined while it is not open (metrics do not open it). */
  async counts(): Promise<GalleryCounts | undefined> {
    if (!this.opened) return undefined;
    return this.opened.count();
  }

  /** Where the gallery is kept: 'sqlite' or 'postgres'. */
  get backend(): 'sqlite' | 'postgres' {
    return this.options.databaseUrl ? 'postgres' : 'sqlite';
  }

  /** Calls `listener` after every recognize; returns the unsubscribe. */
  observe(listener: (event: RecognizeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes the gallery (the engine is closed with the other engines). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.snapshots?.clear();
    const gallery = this.opened ?? (await this.opening?.catch(() => undefined));
    await gallery?.close();
  }

  private emit(event: RecognizeEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** Every face of an image, described, and how to map their boxes back to the image's pixels. */
  private async describe(
    input: ImageInput,
    signal: AbortSignal,
    options: { largestOnly?: boolean } = {},
  ): Promise<{ faces: FaceDescription[]; detected: number; toOriginal: (box: FaceBox) => FaceBox }> {
    const pixels = await facePixels(input, this.options.maxSide);
    signal.throwIfAborted();
    const { faces, detected } = await this.engine.run<FaceDescription>('describe', pixels.image, { maxFaces: this.options.maxFaces, ...options }, signal);
    return { faces, detected, toOriginal: (box) => originalBox(box, pixels, input.width, input.height) };
  }

  /**
   * The open gallery, opening it on first use. Within the fast-fail window after the database was
   * found unavailable, fails at once; after it, every call tries the database again (no route has
   * to clear a mark: the gallery heals as soon as the database answers).
   */
  private async gallery(): Promise<FaceGallery> {
    if (this.closed) throw new AppError('SHUTTING_DOWN', { detail: 'face service is closed' });
    const failure = this.failure;
    if (failure && !this.opening) {
      const left = failure.waitMs - (this.now() - failure.at);
      if (left > 0) throw withRetryAfter(failure.error, left);
    }
    if (this.opened) return this.opened;
    if (!this.opening) {
      const attempt = this.openOnce();
      this.opening = attempt;
      const settled = () => {
        if (this.opening === attempt) this.opening = undefined;
      };
      attempt.then(settled, settled);
    }
    return this.opening;
  }

  private async openOnce(): Promise<FaceGallery> {
    try {
      const gallery = await (this.options.openGallery ?? (() => openGallery(this.options)))();
      if (this.closed) {
        await gallery.close();
        throw new AppError('SHUTTING_DOWN', { detail: 'face service is closed' });
      }
      this.opened = gallery;
      this.snapshots = new GallerySnapshots(gallery);
      this.failure = undefined;
      return gallery;
    } catch (err) {
      throw this.failed(err, true);
    }
  }

  /** A gallery call: GALLERY_UNAVAILABLE starts (or lengthens) the fast-fail window; a success ends it. */
  private async track<T>(call: Promise<T>): Promise<T> {
    try {
      const value = await call;
      this.failure = undefined;
      return value;
    } catch (err) {
      throw this.failed(err, false);
    }
  }

  /** The error to answer with; an unavailable database also opens a fast-fail window, backed off and bounded by retryMs. */
  private failed(err: unknown, opening: boolean): AppError {
    const error = galleryError(err);
    if (error.code !== 'GALLERY_UNAVAILABLE') return error;
    const retryMs = this.options.retryMs ?? 2000;
    const streak = (this.failure?.streak ?? 0) + 1;
    const waitMs = Math.min(retryMs, (retryMs / 4) * 2 ** (streak - 1));
    this.failure = { at: this.now(), error, opening, streak, waitMs };
    return withRetryAfter(error, waitMs);
  }
}

export function createFaceService(config: Config, engine: FaceEngine, decodeBudget?: DecodeBudget): FaceGalleryService {
  return new FaceGalleryService({ ...faceServiceOptions(config, engine), decodeBudget });
}

/** Errors that mean "this file is not an image we take" (a per-file outcome in register). */
function isImageError(err: unknown): err is AppError {
  return err instanceof AppError && (err.code === 'UNSUPPORTED_MEDIA_TYPE' || err.code === 'UNDECODABLE_IMAGE' || err.code === 'IMAGE_TOO_LARGE');
}

/** The error with Retry-After: the seconds until the gallery is tried again (at least 1). */
function withRetryAfter(error: AppError, ms: number): AppError {
  return new AppError(error.code, {
    publicMessage: error.publicMessage,
    detail: error.detail,
    cause: error.cause,
    headers: { ...error.headers, 'Retry-After': String(Math.max(1, Math.ceil(ms / 1000))) },
  });
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
