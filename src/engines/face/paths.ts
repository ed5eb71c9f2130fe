import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface FaceApiPaths {
  /** face-api's build for Node on tfjs's wasm backend (its main entry would load tfjs-node). */
  nodeWasmBuild: string;
  /** The weights shipped inside the face-api package. */
  modelDir: string;
  /** The tfjs-backend-wasm copy face-api itself requires, its dist/ directory with a trailing slash. */
  wasmDir: string;
  /** face-api's package version. */
  version: string;
}

/** Where the installed packages are, resolved like Node resolves them (no hard-coded node_modules path). */
export function faceApiPaths(): FaceApiPaths {
  const packageJson = createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json');
  const packageDir = path.dirname(packageJson);
  const wasmPackageJson = createRequire(packageJson).resolve('@tensorflow/tfjs-backend-wasm/package.json');
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
  return {
    nodeWasmBuild: path.join(packageDir, 'dist', 'face-api.node-wasm.js'),
    modelDir: path.join(packageDir, 'model'),
    wasmDir: path.join(path.dirname(wasmPackageJson), 'dist') + path.sep,
    version,
  };
}

/** What produced a descriptor; stored with it so descriptors of different models are never compared. */
export interface FaceModelInfo {
  name: string;
  version: string;
}

export const FACE_MODEL_NAME = 'face-api-ssd-resnet128';

/**
 * The model identity: face-api's version plus a hash of the weights a descriptor depends on (the
 * landmark net aligns the face, the recognition net embeds it). Reads about 7 MB once.
 */
export function faceModelInfo(paths: FaceApiPaths = faceApiPaths()): FaceModelInfo {
  const hash = createHash('sha256');
  for (const file of ['face_landmark_68_model.bin', 'face_recognition_model.bin']) hash.update(readFileSync(path.join(paths.modelDir, file)));
  return { name: FACE_MODEL_NAME, version: `${paths.version}+${hash.digest('hex').slice(0, 12)}` };
}
