import { AppError } from '../errors.js';

/**
 * The face gallery: who is registered, with which face descriptors. Descriptors are biometric data:
 * a delete removes the rows (no soft delete), and nothing here logs a descriptor or a photo hash.
 * Two implementations pass the same tests: SQLite (one file, the default) and PostgreSQL (a gallery
 * shared by several replicas).
 */

/** What produced a descriptor. Only descriptors of the same model are ever compared. */
export interface FaceModel {
  name: string;
  version: string;
}

export interface GalleryEntry {
  /** DESCRIPTOR_LENGTH finite floats. */
  descriptor: Float32Array;
  /** sha256 of the photo's bytes (hex): registering the same photo twice for a user adds nothing. */
  imageSha256: string;
}

export interface AddResult {
  /** Per entry, in order: stored now, or already there (same user, photo and model). */
  outcomes: ('added' | 'duplicate')[];
  added: number;
  duplicates: number;
  /** The user's descriptors after the call, all models. */
  userDescriptors: number;
  /** The user did not exist before this call. */
  newUser: boolean;
}

export interface GalleryUser {
  userid: string;
  /** Descriptors stored for the user, all models. */
  descriptors: number;
  /** Descriptors per model, keyed `name@version`. */
  byModel: Record<string, number>;
}

/** Every descriptor of one model, flattened for nearest-neighbour search. */
export interface GallerySnapshot {
  model: FaceModel;
  /** Changes whenever the gallery changes (any process); equal generations mean equal contents. */
  generation: number;
  /** userids[i] owns vectors[i*DESCRIPTOR_LENGTH .. (i+1)*DESCRIPTOR_LENGTH). */
  userids: string[];
  vectors: Float32Array;
}

export interface GalleryCounts {
  users: number;
  descriptors: number;
}

export interface GalleryLimits {
  /** Most users; adding a new user beyond → GALLERY_FULL. */
  maxUsers: number;
  /** Most descriptors per user (all models); an add that would pass it → GALLERY_FULL, nothing stored. */
  maxDescriptorsPerUser: number;
}

export interface FaceGallery {
  readonly backend: 'sqlite' | 'postgres';
  /** Adds descriptors to a user (creating the user), in one transaction. Never overwrites. */
  add(userid: string, entries: GalleryEntry[], model: FaceModel): Promise<AddResult>;
  /** Users in userid order. */
  list(): Promise<GalleryUser[]>;
  /** Deletes a user and all their descriptors; resolves to the number of descriptors removed (0: no such user). */
  delete(userid: string): Promise<number>;
  /** Every descriptor of `model`. */
  snapshot(model: FaceModel): Promise<GallerySnapshot>;
  /** The gallery's change counter (cheap): compare with a snapshot's to know whether it is stale. */
  generation(): Promise<number>;
  count(): Promise<GalleryCounts>;
  close(): Promise<void>;
}

export const DESCRIPTOR_LENGTH = 128;
export const MAX_USERID_LENGTH = 256;
/** The schema version this code writes; a database with a newer one is refused. */
export const SCHEMA_VERSION = 1;

export const DEFAULT_LIMITS: GalleryLimits = { maxUsers: 1000, maxDescriptorsPerUser: 50 };

export function modelKey(model: FaceModel): string {
  return `${model.name}@${model.version}`;
}

/**
 * Database failures other than our own errors: 503 GALLERY_UNAVAILABLE, the driver's message kept
 * for the log (it names SQL and columns, never parameter values such as descriptors).
 */
export function galleryError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const detail = `face gallery: ${(err as Error)?.message ?? String(err)}`;
  if (isDiskFull(err)) return new AppError('GALLERY_STORAGE_FULL', { detail, cause: err });
  return new AppError('GALLERY_UNAVAILABLE', { detail, cause: err, headers: { 'Retry-After': '1' } });
}

/** SQLite's SQLITE_FULL (or ENOSPC under it), PostgreSQL's disk_full (53100). */
function isDiskFull(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? '');
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === '53100' || /database or disk is full|No space left on device/i.test((err as Error)?.message ?? '');
}

/**
 * The userid rules (README "Faces"): a userid is a name people read in answers and on drawn
 * images, so it must look like what it is. It is normalized to NFC and trimmed (so NFC and NFD
 * spellings of one name are one user), must not be empty, may hold at most MAX_USERID_LENGTH
 * characters, and must not contain control characters, format characters (zero-width, bidi marks
 * and overrides, soft hyphen), line or paragraph separators, noncharacters (U+FDD0-U+FDEF,
 * U+xFFFE/U+xFFFF) or lone surrogates; `unknown` (any case) is reserved: it is what answers call a
 * stranger. A refused userid is a 400 BAD_PARAMETER that says which rule and which character.
 * Returns the normalized userid, the one stored.
 */
export function checkUserid(userid: unknown): string {
  if (typeof userid !== 'string') throw new AppError('BAD_PARAMETER', { publicMessage: 'userid is required' });
  const name = userid.normalize('NFC').trim();
  if (name === '') throw new AppError('BAD_PARAMETER', { publicMessage: 'userid is required (it was empty or only spaces)' });
  if ([...name].length > MAX_USERID_LENGTH) throw new AppError('BAD_PARAMETER', { publicMessage: `userid is longer than ${MAX_USERID_LENGTH} characters` });
  for (const char of name) {
    const why = refusedCharacter(char);
    if (why) {
      const code = `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
      throw new AppError('BAD_PARAMETER', { publicMessage: `userid contains ${why} (${code}): use letters, digits, spaces and punctuation` });
    }
  }
  if (name.toLowerCase() === UNKNOWN_USERID) {
    throw new AppError('BAD_PARAMETER', { publicMessage: `userid "${UNKNOWN_USERID}" is reserved: answers name every stranger so` });
  }
  return name;
}

/**
 * A userid to delete: any stored name, also one stored before the rules above (so it can still be
 * erased); only empty and over-long ones are refused. The NFC form is tried too.
 */
export function useridsToDelete(userid: unknown): string[] {
  if (typeof userid !== 'string' || userid.trim() === '') throw new AppError('BAD_PARAMETER', { publicMessage: 'userid is required' });
  if ([...userid].length > MAX_USERID_LENGTH + 16) throw new AppError('BAD_PARAMETER', { publicMessage: `userid is longer than ${MAX_USERID_LENGTH} characters` });
  return [...new Set([userid, userid.trim(), userid.normalize('NFC').trim()])];
}

/** What answers call a face that is nobody registered. */
export const UNKNOWN_USERID = 'unknown';

const BIDI_CONTROL = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

/** Why a character may not be in a userid, or undefined when it may. */
function refusedCharacter(char: string): string | undefined {
  if (/\p{Cc}/u.test(char)) return 'a control character';
  if (BIDI_CONTROL.test(char)) return 'a bidirectional override or mark';
  if (/\p{Cf}/u.test(char)) return 'an invisible format character';
  if (/[\p{Zl}\p{Zp}]/u.test(char)) return 'a line or paragraph separator';
  if (/\p{Cs}/u.test(char)) return 'a lone surrogate';
  const cp = char.codePointAt(0)!;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return 'a noncharacter';
  return undefined;
}

export function checkModel(model: FaceModel): void {
  if (!model || typeof model.name !== 'string' || !model.name || typeof model.version !== 'string' || !model.version) {
    throw new AppError('INTERNAL', { detail: 'face model name and version are required' });
  }
}

export function checkEntries(entries: GalleryEntry[]): void {
  for (const e of entries) {
    if (!(e.descriptor instanceof Float32Array) || e.descriptor.length !== DESCRIPTOR_LENGTH || !e.descriptor.every(Number.isFinite)) {
      throw new AppError('INTERNAL', { detail: `a face descriptor must be ${DESCRIPTOR_LENGTH} finite float32 values` });
    }
    if (!/^[0-9a-f]{64}$/.test(e.imageSha256)) throw new AppError('INTERNAL', { detail: 'imageSha256 must be 64 lowercase hex digits' });
  }
}

/** A descriptor as stored: 512 bytes, float32 little-endian (the same bytes on every platform). */
export function encodeDescriptor(descriptor: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(descriptor.length * 4);
  for (let i = 0; i < descriptor.length; i++) out.writeFloatLE(descriptor[i]!, i * 4);
  return out;
}

export function decodeDescriptorInto(bytes: Uint8Array, target: Float32Array, offset: number): void {
  if (bytes.length !== DESCRIPTOR_LENGTH * 4) throw new AppError('INTERNAL', { detail: `stored descriptor has ${bytes.length} bytes` });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < DESCRIPTOR_LENGTH; i++) target[offset + i] = view.getFloat32(i * 4, true);
}

export function galleryFull(detail: string, publicMessage: string): AppError {
  return new AppError('GALLERY_FULL', { publicMessage, detail });
}

export function tooManyUsers(limits: GalleryLimits): AppError {
  return galleryFull(`face gallery holds ${limits.maxUsers} users`, `The face gallery holds the most users allowed (${limits.maxUsers}): delete a user first`);
}

export function tooManyDescriptors(limits: GalleryLimits): AppError {
  return galleryFull(
    `a user would pass ${limits.maxDescriptorsPerUser} descriptors`,
    `This user would have more than ${limits.maxDescriptorsPerUser} face photos: delete the user and register fewer`,
  );
}

/** Rows of (userid, model, count), ordered by userid, as users. */
export function groupUsers(rows: { userid: string; model_name: string; model_version: string; n: number | string }[]): GalleryUser[] {
  const users: GalleryUser[] = [];
  for (const r of rows) {
    let user = users.at(-1);
    if (user?.userid !== r.userid) {
      user = { userid: r.userid, descriptors: 0, byModel: {} };
      users.push(user);
    }
    const n = Number(r.n);
    user.descriptors += n;
    user.byModel[modelKey({ name: r.model_name, version: r.model_version })] = n;
  }
  return users;
}
