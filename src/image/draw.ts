import sharp, { type Sharp } from 'sharp';
import type { DrawBox, ImageInput, OutputFormat, RawImage } from './types.js';
import { JPEG_OPTIONS } from './encode.js';

/**
 * Draws detection boxes on an image: one SVG overlay holding every box (and its label), composited
 * once by sharp. Nothing is drawn pixel by pixel in JavaScript.
 */

/** Colour for boxes without a label; labelled boxes get a colour per label so classes stay apart. */
const DEFAULT_COLOR = '#00e400';
const PALETTE = ['#00e400', '#ff3838', '#2c99ff', '#ffb21d', '#cf3cff', '#00d4bb', '#ff6fd8', '#a4e600', '#ff8a3d', '#6e7bff'];

/** Stroke width that stays visible on large photos without swamping small ones. */
export function strokeWidthFor(width: number, height: number): number {
  return Math.max(2, Math.round(Math.max(width, height) / 320));
}

export function colorFor(label: string | undefined): string {
  if (label === undefined) return DEFAULT_COLOR;
  let h = 0;
  for (let i = 0; i < label.length; i++) h = (h * 31 + label.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

// eslint-disable-next-line no-control-regex
const NOT_XML = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function escapeXml(text: string): string {
  // Characters XML 1.0 cannot hold at all (controls, U+FFFE/U+FFFF, lone surrogates) are drawn as U+FFFD: the renderer would refuse the whole SVG.
  return text.replace(NOT_XML, '\uFFFD').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const num = (v: number) => String(Math.round(v * 10) / 10);
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/**
 * An SVG of exactly width × height with every box outlined. The stroke lies inside the box so the
 * drawn border never covers pixels outside it; a label sits on a filled tag above the box (inside
 * it when the box touches the top edge). Exported so every detector draws the same way.
 */
export function boxesOverlaySvg(width: number, height: number, boxes: readonly DrawBox[]): string {
  const sw = strokeWidthFor(width, height);
  const fontSize = Math.max(12, sw * 6);
  const parts: string[] = [];
  for (const { box, label } of boxes) {
    const x1 = clamp(Math.min(box[0], box[2]), 0, width);
    const y1 = clamp(Math.min(box[1], box[3]), 0, height);
    const x2 = clamp(Math.max(box[0], box[2]), 0, width);
    const y2 = clamp(Math.max(box[1], box[3]), 0, height);
    const color = colorFor(label);
    const w = Math.max(0, x2 - x1 - sw);
    const h = Math.max(0, y2 - y1 - sw);
    parts.push(
      `<rect x="${num(x1 + sw / 2)}" y="${num(y1 + sw / 2)}" width="${num(w)}" height="${num(h)}" fill="none" stroke="${color}" stroke-width="${sw}"/>`,
    );
    if (label) {
      const tagHeight = Math.round(fontSize * 1.3);
      // A rough advance width for a sans-serif face; the tag only has to cover the text approximately.
      const tagWidth = Math.round(label.length * fontSize * 0.6 + fontSize * 0.6);
      const tagY = y1 - tagHeight >= 0 ? y1 - tagHeight : y1;
      const tagX = clamp(x1, 0, Math.max(0, width - tagWidth));
      parts.push(
        `<rect x="${num(tagX)}" y="${num(tagY)}" width="${tagWidth}" height="${tagHeight}" fill="${color}"/>`,
        `<text x="${num(tagX + fontSize * 0.3)}" y="${num(tagY + fontSize * 1.0)}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${fontSize}" fill="#000">${escapeXml(label)}</text>`,
      );
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join('')}</svg>`;
}

/** Encoder settings shared with the other image answers (src/image/encode.ts). */
function encodeAs(s: Sharp, format: OutputFormat): Sharp {
  switch (format) {
    case 'jpeg':
      return s.jpeg(JPEG_OPTIONS);
    case 'png':
      return s.png({ compressionLevel: 3 });
    case 'webp':
      return s.webp({ quality: 90 });
  }
}

function isRawImage(image: ImageInput | RawImage): image is RawImage {
  return 'data' in image && 'channels' in image;
}

/**
 * The image with the boxes drawn on it, encoded as `format`. Takes the validated input (decoded
 * again by sharp, EXIF orientation applied, the same orientation the boxes were found in) or raw
 * pixels (e.g. an image a resource produced).
 */
export async function drawBoxes(image: ImageInput | RawImage, boxes: readonly DrawBox[], format: OutputFormat): Promise<Buffer> {
  const { width, height } = image;
  const pixels = width * height;
  let base: Sharp;
  let hasAlpha: boolean;
  if (isRawImage(image)) {
    base = sharp(image.data, { raw: { width, height, channels: image.channels }, limitInputPixels: pixels });
    hasAlpha = image.channels === 4;
  } else {
    base = image.pipeline();
    hasAlpha = (await base.metadata()).hasAlpha === true;
  }
  if (boxes.length > 0) {
    const svg = Buffer.from(boxesOverlaySvg(width, height, boxes));
    base = base.composite([{ input: svg, top: 0, left: 0, limitInputPixels: pixels }]);
  }
  // Compositing adds an alpha channel; keep one only where the input had it and the format can hold it
  // (JPEG: dropped the way detection dropped it, rather than letting the encoder pick a background).
  if (!hasAlpha || format === 'jpeg') base = base.removeAlpha();
  const encode = () => encodeAs(base, format).toBuffer();
  return isRawImage(image) ? encode() : image.decoding(encode);
}
