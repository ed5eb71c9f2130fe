import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp, type CvServe } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import { loopbackUrlHooks } from './net.js';
import { MODELS_DIR } from './paths.js';
import { until } from './wait.js';

/**
 * An app for supertest with quiet logs, the shared models and small pools. Its `?url=` downloads
 * resolve names only through the hooks the test passes and connect only to loopback, whatever the
 * test sets (and the process-wide network guard, installed by the test command, stands behind
 * that). It returns once the OpenCV workers have started, and throws when they failed to.
 */
/** Where test apps keep a face gallery: never the checkout's ./data. One per test process. */
const DATA_DIR = mkdtempSync(path.join(os.tmpdir(), 'cvserve-test-data-'));

export async function createTestApp(
  overrides: Partial<Config> = {},
  options: Parameters<typeof createApp>[1] = {},
  /** Tests whose routes use no worker (stand-in resources) need not wait for the OpenCV workers. */
  { waitForWorkers = true }: { waitForWorkers?: boolean } = {},
): Promise<CvServe> {
  const config = testConfig({
    logLevel: 'silent',
    modelsDir: MODELS_DIR,
    opencvWorkers: 2,
    onnxWorkers: 1,
    onnxThreads: 2,
    modelsFetch: false,
    dataDir: DATA_DIR,
    // Real work on a busy shared machine can take many times its usual time: no test may fail on
    // that. Tests of these limits set them (tiny, against work that never finishes).
    requestTimeoutMs: 600_000,
    urlTimeoutMs: 600_000,
    ...overrides,
  });
  const svc = await createApp(config, {
    ...options,
    urlHooks: loopbackUrlHooks(options.urlHooks),
  });
  // Requests queue while the OpenCV workers start; on a busy machine that can outlast a request's
  // deadline. Tests start from a started service (tests of startup pass their own engines).
  if (waitForWorkers && !options.engines) {
    await until(() => {
      const stats = svc.engines.opencv.stats();
      return stats.up || stats.startupError !== undefined;
    }, 'the OpenCV workers have started', { timeoutMs: 600_000, intervalMs: 20 });
    const { startupError } = svc.engines.opencv.stats();
    if (startupError !== undefined) {
      await svc.close();
      throw new Error(`test app: the OpenCV workers failed to start: ${startupError}`);
    }
  }
  return svc;
}
