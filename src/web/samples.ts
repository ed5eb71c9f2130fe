import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The sample photos of data/ the playground offers ("try a sample"): an allow-list of committed
 * JPEGs, served read-only. Nothing else in data/ (runtime state such as a face gallery) is ever served.
 */

export interface Sample {
  file: string;
  label: string;
}

export const SAMPLES: readonly Sample[] = [
  { file: 'astronaut.jpg', label: 'astronaut (a face)' },
  { file: 'chelsea.jpg', label: 'cat' },
  { file: 'coffee.jpg', label: 'coffee cup' },
];

/** data/ at the top of the checkout, from src/web/ or dist/src/web/; undefined when absent (an install without data/; the Docker image ships the samples in /app/data). */
function findDataDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const dir = path.resolve(here, up, 'data');
    if (existsSync(path.join(dir, SAMPLES[0]!.file))) return dir;
  }
  return undefined;
}

const dataDir = findDataDir();

/** The samples present on this installation. */
export function availableSamples(): Sample[] {
  return dataDir ? SAMPLES.filter((s) => existsSync(path.join(dataDir, s.file))) : [];
}

/** The file behind an allow-listed sample name, or undefined for any other name. */
export function samplePath(name: string): string | undefined {
  if (!dataDir || !SAMPLES.some((s) => s.file === name)) return undefined;
  return path.join(dataDir, name);
}
