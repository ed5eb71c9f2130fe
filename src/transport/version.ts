import { readFileSync } from 'node:fs';

/** cvserve's version, from its package.json (src/ or dist/src/). */
export function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cvserve' && pkg.version) return pkg.version;
    } catch {
      // not at this level (src/ vs dist/src/)
    }
  }
  return '0.0.0';
}
