import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cachedSha256, describeCheck, hashCount, sha256File, verifyFile } from '../../src/models/verify.js';
import { entryFor, sha256 } from '../engines/onnx-fixtures.js';

describe('sha256 verification', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-verify-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('ok, missing and mismatch, with a clear description', async () => {
    const entry = entryFor('labels.txt', 'cat\ndog\n', 'labels');
    assert.equal(entry.sha256, 'f641fdcd8af73b2f6334ab63c13d2eb857cd16f2aa4ea0ba20ba0eb9627918b5'); // sha256sum of the same bytes
    const missing = await verifyFile(dir, entry);
    assert.deepEqual(missing, { state: 'missing', path: path.join(dir, 'labels.txt') });
    assert.equal(describeCheck(entry, dir, missing), `labels.txt missing in ${dir}; run npm run models`);

    await writeFile(path.join(dir, 'labels.txt'), 'cat\ndog\n');
    assert.deepEqual(await verifyFile(dir, entry), { state: 'ok', path: path.join(dir, 'labels.txt') });

    await writeFile(path.join(dir, 'labels.txt'), 'cat\nDOG\n');
    const bad = await verifyFile(dir, entry);
    assert.equal(bad.state, 'mismatch');
    assert.ok(bad.state === 'mismatch');
    assert.equal(bad.actual, sha256('cat\nDOG\n'));
    assert.equal(
      describeCheck(entry, dir, bad),
      `labels.txt in ${dir} has sha256 ${sha256('cat\nDOG\n')} (8 bytes), the manifest expects ${entry.sha256} (8 bytes): refusing to load it; delete it and run npm run models`,
    );
  });

  test('hashes are cached per path, size and mtime', async () => {
    const file = path.join(dir, 'blob.bin');
    await writeFile(file, Buffer.alloc(100_000, 7));
    const first = await cachedSha256(file);
    assert.equal(first, await sha256File(file));
    const n = hashCount();
    assert.equal(await cachedSha256(file), first);
    assert.equal(hashCount(), n, 'second check served from the cache');

    // Same size, new content and a new mtime: hashed again.
    await writeFile(file, Buffer.alloc(100_000, 8));
    const later = new Date(Date.now() + 5000);
    await utimes(file, later, later);
    const second = await cachedSha256(file);
    assert.equal(hashCount(), n + 1);
    assert.notEqual(second, first);
    assert.equal(second, sha256(Buffer.alloc(100_000, 8)));
  });
});
