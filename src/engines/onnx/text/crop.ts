import type { Quad } from './db.js';

/**
 * A text box cut out of an RGB image and packed straight into a recognizer input: the quad mapped
 * onto a `height`-pixel-high strip whose width follows the box's aspect ratio (PaddleOCR's
 * get_rotate_crop_image then resize_norm_img, without the padding to 320), sampled bilinearly with
 * a few samples per output pixel when the box is much larger than the strip. Boxes taller than
 * wide by 1.5 are read rotated, as PaddleOCR does.
 */

export interface PackSpec {
  height: number;
  maxWidth: number;
  channels: 'RGB' | 'BGR';
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

const dist = (a: [number, number], b: [number, number]) => Math.hypot(a[0] - b[0], a[1] - b[1]);

/** The strip width a quad gets at the spec's height. */
export function stripWidth(quad: Quad, spec: Pick<PackSpec, 'height' | 'maxWidth'>): number {
  const [tl, tr, br, bl] = quad;
  let w = Math.max(dist(tl, tr), dist(bl, br));
  let h = Math.max(dist(tl, bl), dist(tr, br));
  if (h >= 1.5 * w) [w, h] = [h, w];
  return Math.max(8, Math.min(spec.maxWidth, Math.ceil((spec.height * w) / Math.max(1, h))));
}

function sample(img: RgbImage, x: number, y: number, out: Float64Array): void {
  const cx = Math.min(Math.max(x, 0), img.width - 1);
  const cy = Math.min(Math.max(y, 0), img.height - 1);
  const x0 = Math.floor(cx), y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, img.width - 1), y1 = Math.min(y0 + 1, img.height - 1);
  const fx = cx - x0, fy = cy - y0;
  const d = img.data;
  const i00 = (y0 * img.width + x0) * 3, i10 = (y0 * img.width + x1) * 3;
  const i01 = (y1 * img.width + x0) * 3, i11 = (y1 * img.width + x1) * 3;
  for (let c = 0; c < 3; c++) {
    const top = d[i00 + c]! * (1 - fx) + d[i10 + c]! * fx;
    const bottom = d[i01 + c]! * (1 - fx) + d[i11 + c]! * fx;
    out[c] = top * (1 - fy) + bottom * fy;
  }
}

/** The recognizer input for one quad: float32 NCHW [1, 3, height, width]. */
export function packStrip(img: RgbImage, quad: Quad, spec: PackSpec): { data: Float32Array; width: number } {
  let [tl, tr, br, bl] = quad;
  const w0 = Math.max(dist(tl, tr), dist(bl, br));
  const h0 = Math.max(dist(tl, bl), dist(tr, br));
  // PaddleOCR rotates tall crops by 90° (counter-clockwise): the strip's left edge is the box's bottom edge.
  if (h0 >= 1.5 * w0) [tl, tr, br, bl] = [tr, br, bl, tl];
  const H = spec.height;
  const W = stripWidth(quad, spec);
  const plane = H * W;
  const data = new Float32Array(3 * plane);
  const srcH = Math.max(dist(tl, bl), dist(tr, br));
  const srcW = Math.max(dist(tl, tr), dist(bl, br));
  const ss = Math.min(4, Math.max(1, Math.round(Math.max(srcH / H, srcW / W))));
  const order = spec.channels === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const px = new Float64Array(3);
  const acc = new Float64Array(3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      acc.fill(0);
      for (let sy = 0; sy < ss; sy++) {
        const v = (y + (sy + 0.5) / ss) / H;
        for (let sx = 0; sx < ss; sx++) {
          const u = (x + (sx + 0.5) / ss) / W;
          // Bilinear interpolation of the quad's corners (an affine map for the rectangles DB gives).
          const top0 = tl[0] + (tr[0] - tl[0]) * u, top1 = tl[1] + (tr[1] - tl[1]) * u;
          const bot0 = bl[0] + (br[0] - bl[0]) * u, bot1 = bl[1] + (br[1] - bl[1]) * u;
          sample(img, top0 + (bot0 - top0) * v, top1 + (bot1 - top1) * v, px);
          acc[0] += px[0]!;
          acc[1] += px[1]!;
          acc[2] += px[2]!;
        }
      }
      const n = ss * ss;
      for (let c = 0; c < 3; c++) {
        const value = acc[order[c]!]! / n;
        data[c * plane + y * W + x] = (value * spec.scale - spec.mean[c]!) / spec.std[c]!;
      }
    }
  }
  return { data, width: W };
}

/** An RGB image packed as float32 NCHW [1, 3, h, w] in the model's channel order with its normalization. */
export function packImageNchw(rgb: Uint8Array, width: number, height: number, spec: Omit<PackSpec, 'height' | 'maxWidth'>): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  const order = spec.channels === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  for (let c = 0; c < 3; c++) {
    const src = order[c]!;
    const k = spec.scale / spec.std[c]!;
    const b = spec.mean[c]! / spec.std[c]!;
    const dst = c * plane;
    for (let i = 0; i < plane; i++) out[dst + i] = rgb[i * 3 + src]! * k - b;
  }
  return out;
}
