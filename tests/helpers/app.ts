import { createApp, type CvServe } from '../../src/app.js';
import { testConfig, type Config } from '../../src/config.js';
import { MODELS_DIR } from './paths.js';

/** An app for supertest with quiet logs, the shared models and small pools. */
export function createTestApp(overrides: Partial<Config> = {}, options: Parameters<typeof createApp>[1] = {}): Promise<CvServe> {
  return createApp(testConfig({ logLevel: 'silent', modelsDir: MODELS_DIR, opencvWorkers: 2, onnxWorkers: 1, onnxThreads: 2, modelsFetch: false, ...overrides }), options);
}
