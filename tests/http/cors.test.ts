import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp, type CvServe } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { loopbackUrlHooks } from '../helpers/net.js';
import { image, MODELS_DIR } from '../helpers/paths.js';
import { sizeResource } from '../helpers/resources.js';

/** CVSERVE_CORS_ORIGINS through the app: preflights, answers, and the origins it does not name. */

const KEY = 'k-cors-7d1e';
const jpeg = readFileSync(image('test_face_processing.jpg'));
const APP = 'https://app.example.com';

const preflight = (svc: CvServe, origin: string, path = '/size') =>
  request(svc.app)
    .options(path)
    .set('Origin', origin)
    .set('Access-Control-Request-Method', 'POST')
    .set('Access-Control-Request-Headers', 'authorization, content-type');

describe('CORS for the configured origins', () => {
  let svc: CvServe;
  before(async () => {
    // From the environment, as an operator sets it: a list, spaces and a trailing slash and capitals tolerated.
    const config = loadConfig({
      CVSERVE_CORS_ORIGINS: `${APP}, https://Other.Example.org/`,
      CVSERVE_API_KEYS: KEY,
      CVSERVE_MODELS_DIR: MODELS_DIR,
      CVSERVE_MODELS_FETCH: 'off',
      CVSERVE_OPENCV_WORKERS: '1',
      LOG_LEVEL: 'silent',
    });
    svc = await createApp(config, { resources: [sizeResource()], urlHooks: loopbackUrlHooks() });
  });
  after(() => svc.close());

  it('answers a preflight from an allowed origin before authentication (browsers send no key)', async () => {
    const res = await preflight(svc, APP);
    assert.equal(res.status, 204, brief(res));
    assert.equal(res.headers['access-control-allow-origin'], APP);
    assert.equal(res.headers['access-control-allow-methods'], 'GET,POST');
    assert.equal(res.headers['access-control-allow-headers'], 'Authorization,X-API-Key,Content-Type,Accept,X-Request-Id');
    assert.equal(res.headers['access-control-max-age'], '600');
    assert.equal(res.headers['access-control-allow-credentials'], undefined, 'keys travel in headers, never cookies');
  });

  it('marks the real answer for that origin, exposes X-Request-Id and Retry-After, and lets its images be embedded', async () => {
    const res = await request(svc.app).post('/size').set('Origin', APP).set('X-API-Key', KEY).set('Content-Type', 'image/jpeg').send(jpeg);
    assert.equal(res.status, 200, brief(res));
    assert.deepEqual(res.body, { width: 640, height: 482 });
    assert.equal(res.headers['access-control-allow-origin'], APP);
    assert.equal(res.headers['access-control-expose-headers'], 'X-Request-Id,Retry-After');
    assert.match(res.headers.vary ?? '', /Origin/);
    assert.equal(res.headers['cross-origin-resource-policy'], 'cross-origin');
    // Refusals carry it too, so the browser shows the page the error instead of a CORS failure.
    const refused = await request(svc.app).post('/size').set('Origin', APP).attach('image', jpeg, 'a.jpg');
    assert.equal(refused.status, 401, brief(refused));
    assert.equal(refused.headers['access-control-allow-origin'], APP);
  });

  it('matches origins without case or trailing slash differences', async () => {
    const res = await preflight(svc, 'https://other.example.org');
    assert.equal(res.headers['access-control-allow-origin'], 'https://other.example.org');
  });

  it('gives an origin it does not name no CORS header at all', async () => {
    for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'http://app.example.com', 'null']) {
      const res = await preflight(svc, origin);
      assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
      const get = await request(svc.app).get('/ping').set('Origin', origin);
      assert.equal(get.headers['access-control-allow-origin'], undefined, origin);
    }
  });

  it('answers cross-origin /ping through the app (not the fast path), with the header', async () => {
    const res = await request(svc.app).get('/ping').set('Origin', APP);
    assert.deepEqual(res.body, { success: true });
    assert.equal(res.headers['access-control-allow-origin'], APP);
  });
});

describe('CORS for any origin, and off', () => {
  const apps: CvServe[] = [];
  after(() => Promise.all(apps.map((a) => a.close())));

  it('`*` allows every origin, without credentials', async () => {
    const svc = await createTestApp({ corsOrigins: ['*'], opencvWorkers: 1 }, { resources: [sizeResource()] }, { waitForWorkers: false });
    apps.push(svc);
    const res = await preflight(svc, 'https://anywhere.example');
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], '*');
  });

  it('with no origins configured: no CORS headers, a preflight is just a wrong method, images stay same-origin', async () => {
    const svc = await createTestApp({ opencvWorkers: 1 }, { resources: [sizeResource()] }, { waitForWorkers: false });
    apps.push(svc);
    const res = await preflight(svc, APP);
    assert.equal(res.status, 405, brief(res));
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    const ping = await request(svc.app).get('/ping').set('Origin', APP);
    assert.equal(ping.headers['access-control-allow-origin'], undefined);
    assert.equal(ping.headers['cross-origin-resource-policy'], 'same-origin');
  });
});
