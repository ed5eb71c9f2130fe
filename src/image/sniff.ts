import type { InputFormat } from './types.js';

/**
 * Decides an image's type from its first bytes (magic numbers), never from a file name or a
 * declared Content-Type. Returns 'svg' for SVG/XML so it can be refused explicitly.
 */
export function sniffImageType(bytes: Uint8Array): InputFormat | 'svg' | null {
  const b = bytes;
  const at = (offset: number, ...sig: number[]) => sig.every((v, i) => b[offset + i] === v);
  const ascii = (offset: number, s: string) => [...s].every((c, i) => b[offset + i] === c.charCodeAt(0));
  if (b.length < 4) return null;
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'gif';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return 'tiff';
  if (ascii(4, 'ftyp') && (ascii(8, 'avif') || ascii(8, 'avis'))) return 'avif';
  const head = Buffer.from(b.subarray(0, 512)).toString('utf8').trimStart().toLowerCase();
  if (head.startsWith('<?xml') || head.startsWith('<svg') || head.startsWith('<!doctype svg')) return 'svg';
  return null;
}
