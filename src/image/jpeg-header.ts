/**
 * A JPEG's size and EXIF orientation read from its markers in JavaScript: what openImage needs
 * before decoding, without sharp's metadata() (a native call whose synchronous part alone cost
 * ~1 ms of main-thread CPU per request in the profile of the bench's 32x24 row, plus a trip
 * through libuv's pool). Anything unusual returns null and sharp reads the header as before.
 */
export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF orientation 1-8 (1 when the file has no EXIF orientation). */
  orientation: number;
  /** Colour components in the frame: 1 gray, 3 YCbCr or RGB, 4 CMYK or YCCK. */
  components: number;
  /** Whether an embedded ICC profile (APP2 ICC_PROFILE) comes before the frame header. */
  icc: boolean;
}

const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
const STANDALONE = new Set([0x01, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7]);
const SOS = 0xda;
const APP1 = 0xe1;
const APP2 = 0xe2;
/** Segments before the frame header worth walking; a real file has a handful. */
const MAX_SEGMENTS = 64;

export function readJpegHeader(b: Uint8Array): JpegHeader | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let orientation: number | null = 1;
  let exifSeen = false;
  let icc = false;
  let pos = 2;
  for (let segments = 0; segments < MAX_SEGMENTS; segments++) {
    if (pos + 4 > b.length || b[pos] !== 0xff) return null;
    let marker = b[pos + 1]!;
    // Fill bytes (0xFF) may precede a marker.
    while (marker === 0xff && pos + 2 < b.length) marker = b[++pos + 1]!;
    pos += 2;
    if (STANDALONE.has(marker)) continue;
    if (marker === SOS || marker === 0xd9 || pos + 2 > b.length) return null;
    const length = (b[pos]! << 8) | b[pos + 1]!;
    if (length < 2 || pos + length > b.length) return null;
    const body = b.subarray(pos + 2, pos + length);
    if (SOF.has(marker)) {
      if (body.length < 6) return null;
      const height = (body[1]! << 8) | body[2]!;
      const width = (body[3]! << 8) | body[4]!;
      const components = body[5]!;
      if (width === 0 || height === 0 || orientation === null) return null;
      return { width, height, orientation, components, icc };
    }
    if (marker === APP1 && !exifSeen && isExif(body)) {
      exifSeen = true;
      orientation = exifOrientation(body.subarray(6));
    }
    if (marker === APP2 && isIcc(body)) icc = true;
    pos += length;
  }
  return null;
}

function isExif(body: Uint8Array): boolean {
  return body.length >= 6 && body[0] === 0x45 && body[1] === 0x78 && body[2] === 0x69 && body[3] === 0x66 && body[4] === 0 && body[5] === 0;
}

const ICC_PROFILE = 'ICC_PROFILE\0';

function isIcc(body: Uint8Array): boolean {
  if (body.length < ICC_PROFILE.length) return false;
  for (let i = 0; i < ICC_PROFILE.length; i++) if (body[i] !== ICC_PROFILE.charCodeAt(i)) return false;
  return true;
}

/** Tag 0x0112 of IFD0 in a TIFF structure: 1-8, 1 when absent, null when the structure is not clean. */
function exifOrientation(tiff: Uint8Array): number | null {
  if (tiff.length < 8) return null;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return null;
  const u16 = (at: number) => (little ? tiff[at]! | (tiff[at + 1]! << 8) : (tiff[at]! << 8) | tiff[at + 1]!);
  const u32 = (at: number) => (little ? u16(at) + u16(at + 2) * 0x10000 : u16(at) * 0x10000 + u16(at + 2));
  if (u16(2) !== 42) return null;
  const ifd = u32(4);
  if (ifd < 8 || ifd + 2 > tiff.length) return null;
  const count = u16(ifd);
  if (ifd + 2 + count * 12 > tiff.length) return null;
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (u16(entry) !== 0x0112) continue;
    if (u16(entry + 2) !== 3 || u32(entry + 4) !== 1) return null;
    const value = u16(entry + 8);
    return value >= 1 && value <= 8 ? value : null;
  }
  return 1;
}
