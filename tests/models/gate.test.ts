import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { testConfig } from '../../src/config.js';
import type { ServiceSet } from '../../src/resources/contract.js';
import { OpenCvEngine } from '../../src/engines/opencv/engine.js';
import { ModelStore } from '../../src/models/store.js';
import { createHaarFaceResource } from '../../src/resources/haar-faces.js';
import { until } from '../helpers/wait.js';
import { FACE_CASCADE, modelsDir } from '../resources/haar-reference.js';

const log = pino({ level: 'silent' });

describe('one readiness mechanism: a gate that gave up looks at its files again', () => {
  let dir: string;
  let opencv: OpenCvEngine;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-gate-'));
    opencv = new OpenCvEngine({ workers: 1, maxQueue: 8, modelsDir: dir });
  });
  after(async () => {
    await opencv.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a cascade copied in after startup (fetching off) makes /detect ready, through the same gate as the models', async () => {
    const config = testConfig({ modelsDir: dir, modelsFetch: false });
    const models = new ModelStore({ ...ModelStore.fromConfig(config).options, recheckMs: 0 });
    const detect = createHaarFaceResource();
    await detect.init({ config, engines: { opencv, models } as unknown as ServiceSet, log });
    assert.deepEqual(detect.status(), { ready: false, reason: `${FACE_CASCADE} missing in ${dir}; run npm run models` });

    await copyFile(path.join(modelsDir, FACE_CASCADE), path.join(dir, FACE_CASCADE));
    await until(() => detect.status().ready, 'the gate finds the cascade');
  });

  test('with the default interval, a gate that gave up does not look again at once', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'cvserve-gate-empty-'));
    try {
      const config = testConfig({ modelsDir: empty, modelsFetch: false });
      const models = ModelStore.fromConfig(config);
      const detect = createHaarFaceResource();
      await detect.init({ config, engines: { opencv, models } as unknown as ServiceSet, log });
      await copyFile(path.join(modelsDir, FACE_CASCADE), path.join(empty, FACE_CASCADE));
      for (let i = 0; i < 20; i++) assert.equal(detect.status().ready, false, 'no look before the interval');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
