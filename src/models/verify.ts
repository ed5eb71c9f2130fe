import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { ManifestFile } from './manifest.js';

export type FileCheck =
  | { state: 'ok'; path: string }
  | { state: 'missing'; path: string }
  | { state: 'mismatch'; path: string; expected: string; actual: string; bytes: number };

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface CachedHash {
  size: number;
  mtimeMs: number;
  sha256: string;
}

// Keyed by absolute path; a file whose size or mtime changed is hashed again.
const hashCache = new Map<string, CachedHash>();
let hashesComputed = 0;

/** sha256 of a file, remembered per (path, size, mtime) so repeated checks do not read it again. */
export async function cachedSha256(file: string): Promise<string> {
  const abs = path.resolve(file);
  const st = await stat(abs);
  const hit = hashCache.get(abs);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const sha256 = await sha256File(abs);
  hashesComputed++;
  hashCache.set(abs, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
  return sha256;
}

/** Records a hash just computed elsewhere (a verified download), so the next check does not read the file again. */
export async function rememberSha256(file: string, sha256: string): Promise<void> {
  const abs = path.resolve(file);
  const st = await stat(abs);
  hashCache.set(abs, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
}

/** How many files were actually hashed (not served from the cache): for tests. */
export function hashCount(): number {
  return hashesComputed;
}

/** Checks a manifest file in `dir`: present, and its sha256 is the manifest's. */
export async function verifyFile(dir: string, entry: ManifestFile): Promise<FileCheck> {
  const file = path.resolve(dir, entry.file);
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) return { state: 'missing', path: file };
    size = st.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing', path: file };
    throw err;
  }
  const actual = await cachedSha256(file);
  return actual === entry.sha256 ? { state: 'ok', path: file } : { state: 'mismatch', path: file, expected: entry.sha256, actual, bytes: size };
}

/** One line for logs and status reasons. */
export function describeCheck(entry: ManifestFile, dir: string, check: FileCheck): string {
  switch (check.state) {
    case 'ok':
      return `${entry.file} ok`;
    case 'missing':
      return `${entry.file} missing in ${path.resolve(dir)}; run npm run models`;
    case 'mismatch':
      return (
        `${entry.file} in ${path.resolve(dir)} has sha256 ${check.actual} (${check.bytes} bytes), ` +
        `the manifest expects ${check.expected} (${entry.bytes} bytes): refusing to load it; delete it and run npm run models`
      );
  }
}
