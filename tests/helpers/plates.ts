import sharp from 'sharp';

/**
 * Licence plates made by the tests: rendered with sharp from SVG in DejaVu fonts (Debian's
 * fonts-dejavu-core, which the machine and the CI image have), on plate-like backgrounds, and
 * placed into the data/ photos with a perspective, blur and JPEG compression. Nothing is committed
 * but this code.
 */

export type PlateStyle = 'us' | 'eu';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plate as RGBA pixels: US 6×12 in (white, state name, dark blue characters) or EU 520×110 mm (blue band, black characters). */
export async function renderPlate(text: string, style: PlateStyle, width = 520): Promise<{ data: Buffer; width: number; height: number }> {
  let svg: string;
  if (style === 'us') {
    const h = Math.round(width / 2);
    svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" viewBox="0 0 520 260">` +
      `<rect x="3" y="3" width="514" height="254" rx="20" fill="#f3f3ee" stroke="#333" stroke-width="6"/>` +
      `<text x="260" y="58" font-family="DejaVu Serif" font-style="italic" font-size="40" fill="#b3121b" text-anchor="middle">California</text>` +
      `<text x="260" y="185" font-family="DejaVu Sans Condensed" font-weight="bold" font-size="104" fill="#1b2a6b" text-anchor="middle">${escape(text)}</text>` +
      `<text x="260" y="240" font-family="DejaVu Sans" font-size="22" fill="#b3121b" text-anchor="middle">dmv.ca.gov</text></svg>`;
    const data = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer();
    return { data, width, height: h };
  }
  const h = Math.round((width * 110) / 520);
  svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" viewBox="0 0 520 110">` +
    `<rect x="1" y="1" width="518" height="108" rx="8" fill="#fafafa" stroke="#111" stroke-width="3"/>` +
    `<rect x="3" y="3" width="48" height="104" rx="6" fill="#0a3ca0"/>` +
    `<text x="27" y="92" font-family="DejaVu Sans" font-weight="bold" font-size="30" fill="#fff" text-anchor="middle">F</text>` +
    `<text x="285" y="86" font-family="DejaVu Sans Condensed" font-weight="bold" font-size="80" fill="#111" text-anchor="middle">${escape(text)}</text></svg>`;
  const data = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer();
  return { data, width, height: h };
}

type Pt = [number, number];

/** The homography taking the unit square's corners (0,0),(1,0),(1,1),(0,1) to `q`. */
function squareToQuad(q: [Pt, Pt, Pt, Pt]): number[] {
  const [[x0, y0], [x1, y1], [x2, y2], [x3, y3]] = q;
  const dx1 = x1 - x2, dx2 = x3 - x2, dy1 = y1 - y2, dy2 = y3 - y2;
  const sx = x0 - x1 + x2 - x3, sy = y0 - y1 + y2 - y3;
  const det = dx1 * dy2 - dx2 * dy1;
  const g = (sx * dy2 - dx2 * sy) / det;
  const h = (dx1 * sy - sx * dy1) / det;
  return [x1 - x0 + g * x1, x3 - x0 + h * x3, x0, y1 - y0 + g * y1, y3 - y0 + h * y3, y0, g, h, 1];
}

function invert3(m: number[]): number[] {
  const [a, b, c, d, e, f, g, h, i] = m as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [A / det, -(b * i - c * h) / det, (b * f - c * e) / det, B / det, (a * i - c * g) / det, -(a * f - c * d) / det, C / det, -(a * h - b * g) / det, (a * e - b * d) / det];
}

export interface Placement {
  /** The plate's corners in the photo, clockwise from the top-left. */
  quad: [Pt, Pt, Pt, Pt];
  /** Gaussian blur sigma applied to the whole photo afterwards (0: none). */
  blur?: number;
  /** JPEG quality of the result. */
  quality?: number;
}

/** The photo with the plate warped onto `quad` (bilinear, alpha-blended), blurred and JPEG-compressed. */
export async function placePlate(photo: Buffer, plate: { data: Buffer; width: number; height: number }, p: Placement): Promise<Buffer> {
  const { data, info } = await sharp(photo).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const W = info.width, H = info.height;
  const toPhoto = squareToQuad(p.quad);
  const toUnit = invert3(toPhoto);
  const xs = p.quad.map((q) => q[0]), ys = p.quad.map((q) => q[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs))), x1 = Math.min(W - 1, Math.ceil(Math.max(...xs)));
  const y0 = Math.max(0, Math.floor(Math.min(...ys))), y1 = Math.min(H - 1, Math.ceil(Math.max(...ys)));
  const pw = plate.width, ph = plate.height, pd = plate.data;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const [a, b, c, d, e, f, g, h, i] = toUnit as [number, number, number, number, number, number, number, number, number];
      const px = x + 0.5, py = y + 0.5;
      const w = g * px + h * py + i;
      const u = (a * px + b * py + c) / w, v = (d * px + e * py + f) / w;
      if (u < 0 || u >= 1 || v < 0 || v >= 1) continue;
      const sx = Math.min(pw - 1.001, Math.max(0, u * pw - 0.5)), sy = Math.min(ph - 1.001, Math.max(0, v * ph - 0.5));
      const ix = Math.floor(sx), iy = Math.floor(sy), fx = sx - ix, fy = sy - iy;
      const px4 = (xx: number, yy: number, ch: number) => pd[(yy * pw + xx) * 4 + ch]!;
      const lerp = (ch: number) =>
        (px4(ix, iy, ch) * (1 - fx) + px4(ix + 1, iy, ch) * fx) * (1 - fy) + (px4(ix, iy + 1, ch) * (1 - fx) + px4(ix + 1, iy + 1, ch) * fx) * fy;
      const alpha = lerp(3) / 255;
      const o = (y * W + x) * 3;
      for (let ch = 0; ch < 3; ch++) data[o + ch] = Math.round(lerp(ch) * alpha + data[o + ch]! * (1 - alpha));
    }
  }
  let out = sharp(data, { raw: { width: W, height: H, channels: 3 } });
  if (p.blur && p.blur >= 0.3) out = out.blur(p.blur);
  return out.jpeg({ quality: p.quality ?? 92 }).toBuffer();
}

/** The scripts' plate photo: a US plate reading 7ABC123, 280 px wide and upright, centred at (250, 260) of `photo` (data/coffee.jpg). */
export async function usPlateIn(photo: Buffer): Promise<Buffer> {
  const plate = await renderPlate('7ABC123', 'us', 520);
  return placePlate(photo, plate, { quad: plateQuad(250, 260, 280, plate.width / plate.height, 0, 0), quality: 92 });
}

/** A small seeded PRNG (mulberry32): the degraded set is the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LETTERS = 'ABCDEFGHJKLMNPRSTUVWXYZ';
const DIGITS = '0123456789';

/** A random plate string of a layout (L letter, D digit; other characters kept as they are). */
export function plateOf(layout: string, rand: () => number): string {
  return [...layout].map((c) => (c === 'L' ? LETTERS[Math.floor(rand() * LETTERS.length)] : c === 'D' ? DIGITS[Math.floor(rand() * DIGITS.length)] : c)).join('');
}

/** A quad of `width` px wide plate of aspect `aspect` centred at (cx, cy), turned by a yaw (one side shorter) and a tilt (degrees). */
export function plateQuad(cx: number, cy: number, width: number, aspect: number, yaw: number, tilt: number): [Pt, Pt, Pt, Pt] {
  const h = width / aspect;
  const shrink = Math.sin((Math.abs(yaw) * Math.PI) / 180) * 0.35;
  const leftH = yaw > 0 ? h * (1 - shrink) : h, rightH = yaw < 0 ? h * (1 - shrink) : h;
  const w = width * Math.cos((yaw * Math.PI) / 180);
  const pts: Pt[] = [
    [-w / 2, -leftH / 2],
    [w / 2, -rightH / 2],
    [w / 2, rightH / 2],
    [-w / 2, leftH / 2],
  ];
  const t = (tilt * Math.PI) / 180;
  return pts.map(([x, y]) => [cx + x * Math.cos(t) - y * Math.sin(t), cy + x * Math.sin(t) + y * Math.cos(t)]) as [Pt, Pt, Pt, Pt];
}
