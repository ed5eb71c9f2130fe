import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import { z } from 'zod';
import type { CvServe } from '../../src/app.js';
import type { AnyResource } from '../../src/resources/contract.js';
import { createTestApp } from '../helpers/app.js';
import { standInDetector } from '../helpers/resources.js';
import { brief } from '../helpers/http.js';
import { capturingLogger } from '../helpers/log.js';
import { flatPng } from '../helpers/shapes.js';

const KEY = 'k-ds-5e1f0a9c73b2';
const OTHER = 'k-ds-second-key';
const WRONG = 'k-ds-not-a-key-44';

/** Stand-in classifier whose model is missing. */
function missingClassifier(): AnyResource {
  return {
    name: 'predict',
    summary: 'stand-in classifier without its model',
    params: z.strictObject({ top: z.unknown().optional() }),
    output: { kind: 'json', schema: z.object({}).passthrough() },
    async init() {},
    status: () => ({ ready: false, reason: 'model file missing' }),
    async run() {
      throw new Error('never runs');
    },
    async close() {},
  };
}

function expect401(res: request.Response): void {
  assert.equal(res.status, 401, brief(res));
  assert.equal(res.body.success, false);
  assert.equal(res.body.code, 401);
  assert.match(res.body.error, /form field api_key/);
  assert.equal(res.headers['www-authenticate'], 'Bearer');
}

describe('DeepStack dialect: keys as the clients send them (form fields api_key / admin_key, or the headers)', () => {
  let svc: CvServe;
  let dataDir: string;
  let jpeg: Buffer;
  const captured = capturingLogger();

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-ds-keys-'));
    jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#468' } }).jpeg().toBuffer();
    svc = await createTestApp({ apiKeys: [KEY, OTHER], dataDir, opencvWorkers: 1 }, { logger: captured.log, resources: [standInDetector([{ box: [1, 2, 3, 4], label: 'cat', score: 0.9 }]), missingClassifier()] });
  });
  after(async () => {
    await svc.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const detect = () => request(svc.app).post('/v1/vision/detection');

  it('api_key in the multipart form (Home Assistant, Frigate, Node-RED), either configured key', async () => {
    for (const key of [KEY, OTHER]) {
      const res = await detect().field('api_key', key).attach('image', jpeg, 'image.jpg');
      assert.equal(res.status, 200, brief(res));
      assert.deepEqual(res.body.predictions, [{ label: 'cat', confidence: 0.9, x_min: 1, y_min: 2, x_max: 3, y_max: 4 }]);
    }
    // After the file, as some clients order the parts.
    const after = await detect().attach('image', jpeg, 'image.jpg').field('api_key', KEY);
    assert.equal(after.status, 200, brief(after));
  });

  it('admin_key counts as a key (Node-RED sends both); a wrong api_key does not spoil a right admin_key', async () => {
    assert.equal((await detect().field('admin_key', KEY).attach('image', jpeg, 'image.jpg')).status, 200);
    assert.equal((await detect().field('api_key', WRONG).field('admin_key', OTHER).attach('image', jpeg, 'image.jpg')).status, 200);
  });

  it('the native headers work too, with no form key', async () => {
    assert.equal((await detect().set('X-API-Key', KEY).attach('image', jpeg, 'image.jpg')).status, 200);
    assert.equal((await detect().set('Authorization', `Bearer ${OTHER}`).attach('image', jpeg, 'image.jpg')).status, 200);
  });

  it('no key, an empty api_key (what Home Assistant sends unconfigured), a wrong one, or a key in the query string: 401 in the dialect', async () => {
    expect401(await detect().attach('image', jpeg, 'image.jpg'));
    expect401(await detect().field('api_key', '').attach('image', jpeg, 'image.jpg'));
    expect401(await detect().field('api_key', WRONG).attach('image', jpeg, 'image.jpg'));
    expect401(await detect().set('X-API-Key', WRONG).attach('image', jpeg, 'image.jpg'));
    expect401(await request(svc.app).post(`/v1/vision/detection?api_key=${KEY}`).attach('image', jpeg, 'image.jpg'));
  });

  it('an urlencoded body with only api_key (Home Assistant\'s face list) authenticates; without it, 401', async () => {
    const list = await request(svc.app).post('/v1/vision/custom/list').type('form').send({ api_key: KEY });
    assert.equal(list.status, 200, brief(list));
    const faces = await request(svc.app).post('/v1/vision/face/list').type('form').send({ api_key: KEY });
    assert.equal(faces.status, 200, brief(faces));
    assert.deepEqual(faces.body.faces, []);
    expect401(await request(svc.app).post('/v1/vision/face/list').type('form').send({ api_key: WRONG }));
    expect401(await request(svc.app).post('/v1/vision/face/list'));
  });

  it('the key is checked before readiness: without one a route whose model is missing says 401, with one 503', async () => {
    expect401(await request(svc.app).post('/v1/vision/scene').attach('image', jpeg, 'image.jpg'));
    const res = await request(svc.app).post('/v1/vision/scene').field('api_key', KEY).attach('image', jpeg, 'image.jpg');
    assert.equal(res.status, 503, brief(res));
    assert.deepEqual(res.body, { success: false, error: '/predict is unavailable: model file missing', code: 503 });
  });

  it('the key is checked before the image: a row over the decode memory says 401 without one, 413 with one; nothing is stored', async () => {
    const wide = flatPng(40_000_000, 1, { channels: 4 });
    expect401(await detect().field('api_key', WRONG).attach('image', wide, 'wide.png'));
    expect401(await request(svc.app).post('/v1/vision/face/register').field('api_key', WRONG).field('userid', 'wide').attach('image', wide, 'wide.png'));
    const refused = await detect().field('api_key', KEY).attach('image', wide, 'wide.png');
    assert.equal(refused.status, 413, brief(refused));
    assert.match(refused.body.error, /CVSERVE_DECODE_MEMORY_BYTES/);
    const register = await request(svc.app).post('/v1/vision/face/register').field('api_key', KEY).field('userid', 'wide').attach('image', wide, 'wide.png');
    assert.equal(register.status, 413, brief(register));
    const faces = await request(svc.app).post('/v1/vision/face/list').type('form').send({ api_key: KEY });
    assert.deepEqual(faces.body.faces, []);
    assert.deepEqual(svc.engines.decodeBudget.stats(), { capacityBytes: svc.config.decodeMemoryBytes, heldBytes: 0, running: 0, waiting: 0 });
  });

  it('status routes answer without a key (Blue Iris sends none), as /ping does', async () => {
    assert.equal((await request(svc.app).get('/v1/status/ping')).status, 200);
    assert.equal((await request(svc.app).get('/v1/status/updateavailable')).status, 200);
  });

  it('form keys open only the dialect: a native route still wants the header', async () => {
    const res = await request(svc.app).post('/catdetection').field('api_key', KEY).attach('image', jpeg, 'image.jpg');
    assert.equal(res.status, 401);
    assert.equal(res.body.code, 'UNAUTHORIZED');
  });

  it('no key, right or wrong, is ever written to the log', () => {
    const text = captured.text();
    assert.ok(text.includes('/v1/vision/detection'), 'the requests were logged');
    for (const key of [KEY, OTHER, WRONG]) assert.ok(!text.includes(key), 'a key was logged');
  });
});
