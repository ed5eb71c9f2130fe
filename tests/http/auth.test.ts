import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp, type CvServe } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createCannyResource } from '../../src/resources/canny.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { capturingLogger } from '../helpers/log.js';
import { loopbackUrlHooks, tableLookup } from '../helpers/net.js';
import { image, MODELS_DIR } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

const KEY = 'k-3f9a61c0d2e84b7f';
const FILE_KEY = 'k-from-the-file-77aa';
const jpeg = readFileSync(image('test_face_processing.jpg'));

function expectUnauthorized(res: request.Response): void {
  assert.equal(res.status, 401, brief(res));
  assert.equal(res.type, 'application/json');
  assert.deepEqual(res.body, { status: 'unauthorized', message: 'A valid API key is required', code: 'UNAUTHORIZED' });
  assert.equal(res.headers['www-authenticate'], 'Bearer');
}

describe('API keys', () => {
  let svc: CvServe;
  let dir: string;
  const captured = capturingLogger();
  // A ?url= request must be refused before anything is looked up or fetched.
  const lookup = tableLookup();

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-keys-'));
    const keysFile = path.join(dir, 'keys.txt');
    writeFileSync(keysFile, `# operators\n${FILE_KEY}\n\n  # rotated out below\n`);
    svc = await createTestApp({ apiKeys: [KEY, 'k-second'], apiKeysFile: keysFile, opencvWorkers: 1 }, { logger: captured.log, urlHooks: { lookup } });
  });
  after(async () => {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a request without a key', async () => {
    expectUnauthorized(await request(svc.app).post('/canny').attach('image', jpeg, 'a.jpg'));
    expectUnauthorized(await request(svc.app).get('/canny?url=http://images.test/a.jpg'));
    assert.deepEqual(lookup.calls, [], 'nothing was looked up for the refused ?url=');
  });

  it('refuses a wrong key in either header, and a malformed Authorization', async () => {
    expectUnauthorized(await request(svc.app).post('/canny').set('Authorization', 'Bearer nope').attach('image', jpeg, 'a.jpg'));
    expectUnauthorized(await request(svc.app).post('/canny').set('X-API-Key', 'nope').attach('image', jpeg, 'a.jpg'));
    expectUnauthorized(await request(svc.app).post('/canny').set('Authorization', `Basic ${KEY}`).attach('image', jpeg, 'a.jpg'));
    expectUnauthorized(await request(svc.app).post('/canny').set('Authorization', KEY).attach('image', jpeg, 'a.jpg'));
    expectUnauthorized(await request(svc.app).post('/canny').set('X-API-Key', `${KEY}x`).attach('image', jpeg, 'a.jpg'));
    expectUnauthorized(await request(svc.app).post('/canny').set('X-API-Key', KEY.slice(0, -1)).attach('image', jpeg, 'a.jpg'));
  });

  it('accepts the right key as a bearer token or in X-API-Key, from the variable or the file', async () => {
    for (const [header, value] of [
      ['Authorization', `Bearer ${KEY}`],
      ['Authorization', `bearer ${KEY}`],
      ['Authorization', 'Bearer k-second'],
      ['X-API-Key', KEY],
      ['X-API-Key', FILE_KEY],
      ['Authorization', `Bearer ${FILE_KEY}`],
    ] as const) {
      const res = await request(svc.app).post('/canny?format=png').set(header, value).attach('image', jpeg, 'a.jpg');
      assert.equal(res.status, 200, `${header}: ${value} → ${brief(res)}`);
      assert.equal(res.type, 'image/png');
    }
    // A comment line of the file is not a key.
    expectUnauthorized(await request(svc.app).post('/canny').set('X-API-Key', '# operators').attach('image', jpeg, 'a.jpg'));
  });

  it('keeps /ping, /healthz and /readyz open', async () => {
    assert.deepEqual((await request(svc.app).get('/ping').expect(200)).body, { success: true });
    assert.deepEqual((await request(svc.app).get('/healthz').expect(200)).body, { status: 'ok' });
    await until(() => svc.engines.opencv.stats().up, 'the OpenCV pool is up');
    assert.deepEqual((await request(svc.app).get('/readyz').expect(200)).body, { status: 'ready' });
  });

  it('guards /metrics unless it is made public', async () => {
    expectUnauthorized(await request(svc.app).get('/metrics'));
    const res = await request(svc.app).get('/metrics').set('X-API-Key', KEY).expect(200);
    assert.match(res.text, /cvserve_http_requests_total/);
  });

  it('keeps the playground, /docs and /openapi.json open by default (they hold no data)', async () => {
    await request(svc.app).get('/openapi.json').expect(200);
    await request(svc.app).get('/').set('Accept', 'application/json').expect(200);
    // Only reading them: other methods still need a key.
    expectUnauthorized(await request(svc.app).post('/openapi.json'));
  });

  it('never writes a key to the log', async () => {
    await request(svc.app).post('/canny').set('Authorization', `Bearer ${KEY}`).attach('image', jpeg, 'a.jpg');
    await request(svc.app).post('/canny').set('X-API-Key', FILE_KEY).attach('image', jpeg, 'a.jpg');
    await request(svc.app).post('/canny').set('X-API-Key', 'k-wrong-guess-1234');
    const log = captured.text();
    assert.match(log, /POST \/canny 200/, 'the requests were logged');
    assert.match(log, /request refused/);
    for (const secret of [KEY, FILE_KEY, 'k-second', 'k-wrong-guess-1234']) assert.ok(!log.includes(secret), `${secret} leaked into the log`);
  });
});

describe('API key settings', () => {
  it('opens /metrics with CVSERVE_METRICS_PUBLIC and closes the docs with CVSERVE_DOCS_PUBLIC=false', async () => {
    const svc = await createTestApp({ apiKeys: [KEY], metricsPublic: true, docsPublic: false, opencvWorkers: 1 });
    try {
      await request(svc.app).get('/metrics').expect(200);
      expectUnauthorized(await request(svc.app).get('/openapi.json'));
      expectUnauthorized(await request(svc.app).get('/').set('Accept', 'application/json'));
      await request(svc.app).get('/openapi.json').set('X-API-Key', KEY).expect(200);
    } finally {
      await svc.close();
    }
  });

  it('leaves everything open when no key is configured', async () => {
    const svc = await createTestApp({ opencvWorkers: 1 });
    try {
      const res = await request(svc.app).post('/canny').attach('image', jpeg, 'a.jpg');
      assert.equal(res.status, 200);
      await request(svc.app).get('/metrics').expect(200);
    } finally {
      await svc.close();
    }
  });

  it('reads CVSERVE_API_KEYS as a comma-separated list: entries trimmed, empty ones dropped', async () => {
    const config = loadConfig({ CVSERVE_API_KEYS: ' k-one , k-two,,k-three ,', CVSERVE_MODELS_DIR: MODELS_DIR, CVSERVE_MODELS_FETCH: 'off', LOG_LEVEL: 'silent', CVSERVE_OPENCV_WORKERS: '1' });
    const svc = await createApp(config, { resources: [createCannyResource()], urlHooks: loopbackUrlHooks() });
    try {
      for (const key of ['k-one', 'k-two', 'k-three']) {
        const res = await request(svc.app).post('/canny').set('X-API-Key', key).attach('image', jpeg, 'a.jpg');
        assert.equal(res.status, 200, `${key}: ${brief(res)}`);
      }
      for (const wrong of [' k-one , k-two,,k-three ,', 'k-one , k-two', 'k', '']) {
        expectUnauthorized(await request(svc.app).post('/canny').set('X-API-Key', wrong).attach('image', jpeg, 'a.jpg'));
      }
    } finally {
      await svc.close();
    }
  });

  it('refuses to start when the keys file cannot be read', async () => {
    await assert.rejects(createTestApp({ apiKeysFile: '/nonexistent/cvserve-keys.txt' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /CVSERVE_API_KEYS_FILE: cannot read \/nonexistent\/cvserve-keys.txt: ENOENT/);
      return true;
    });
  });
});
