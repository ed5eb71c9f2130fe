import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { testConfig, type Config } from '../../src/config.js';
import { OnnxEngine } from '../../src/engines/onnx/engine.js';
import { openImage } from '../../src/image/decode.js';
import type { ImageInput } from '../../src/image/types.js';
import { loadManifest, parseManifest, type Manifest, type ManifestFile } from '../../src/models/manifest.js';
import { ModelStore, type ModelStoreOptions } from '../../src/models/store.js';
import type { RunContext, ServiceSet } from '../../src/resources/contract.js';
import { MODELS_DIR } from '../helpers/paths.js';

export { MODELS_DIR };

export { capturingLogger } from '../helpers/log.js';

export const silentLog = pino({ level: 'silent' });

export function runContext(signal = new AbortController().signal): RunContext {
  return { signal, log: silentLog };
}

export async function imageInput(fileOrBytes: string | Buffer, maxPixels = 40_000_000): Promise<ImageInput> {
  const bytes = typeof fileOrBytes === 'string' ? await readFile(fileOrBytes) : fileOrBytes;
  return openImage(bytes, { maxPixels });
}

export interface TestEngines {
  engines: ServiceSet;
  config: Config;
  close(): Promise<void>;
}

/**
 * The ONNX engine and a model store, without the OpenCV pool (resources here never use it).
 * Default: the shared models with the built-in manifest, fetching off.
 */
export function onnxEngines(options: Partial<ModelStoreOptions> & { config?: Partial<Config> } = {}): TestEngines {
  const config = testConfig({ logLevel: 'silent', modelsDir: options.dir ?? MODELS_DIR, modelsFetch: false, onnxWorkers: 1, onnxThreads: 2, ...options.config });
  const onnx = new OnnxEngine({ workers: config.onnxWorkers, threads: config.onnxThreads, maxQueue: config.onnxMaxQueue, modelsDir: config.modelsDir });
  const models = new ModelStore({ dir: config.modelsDir, manifest: options.manifest ?? loadManifest(), fetchMissing: false, ...options });
  const engines = { onnx, models } as unknown as ServiceSet;
  return {
    engines,
    config,
    async close() {
      await Promise.all([models.close(), onnx.close()]);
    },
  };
}

export const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

/** A manifest file entry for bytes the test wrote itself. */
export function entryFor(file: string, data: Uint8Array | string, kind: ManifestFile['kind']): ManifestFile {
  const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  return { file, kind, bytes, sha256: sha256(data), url: `https://example.invalid/${file}`, license: 'test', source: 'written by the test' };
}

/** A temporary models directory holding the given files, and a validated manifest for them. */
export async function tempModels(
  files: { file: string; data: Uint8Array | string; kind: ManifestFile['kind'] }[],
  rest: Omit<Manifest, 'files' | 'version'>,
): Promise<{ dir: string; manifest: Manifest; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-models-'));
  for (const f of files) await writeFile(path.join(dir, f.file), f.data);
  const manifest = parseManifest({ version: 1, files: files.map((f) => entryFor(f.file, f.data, f.kind)), ...rest }, 'test manifest');
  return { dir, manifest, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
