import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(repoRoot, '..', 'shared');

/** Where the shared models, photos and references live (CI: ../shared beside the clone). */
export const MODELS_DIR = path.resolve(repoRoot, process.env.CVSERVE_MODELS_DIR ?? path.join(shared, 'models'));
export const IMAGES_DIR = path.join(shared, 'images');
export const REFERENCE_DIR = path.join(shared, 'reference');
export const REPO_ROOT = repoRoot;

export const image = (name: string) => path.join(IMAGES_DIR, name);
export const reference = (name: string) => path.join(REFERENCE_DIR, name);
