import sharp from 'sharp';

/** Edge-pixel IoU between two single-channel edge maps (pixels > 127 are edges). */
export function edgeIoU(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`size mismatch ${a.length} vs ${b.length}`);
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    const ea = a[i]! > 127;
    const eb = b[i]! > 127;
    if (ea && eb) inter++;
    if (ea || eb) union++;
  }
  return union === 0 ? 1 : inter / union;
}

export async function grayPixels(bytes: Buffer | string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Box IoU for [x1, y1, x2, y2]. */
export function boxIoU(a: number[], b: number[]): number {
  const ix = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const iy = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = ix * iy;
  const area = (r: number[]) => (r[2]! - r[0]!) * (r[3]! - r[1]!);
  return inter / (area(a) + area(b) - inter);
}
