import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createTestApp } from '../helpers/app.js';
import { image, MODELS_DIR } from '../helpers/paths.js';

describe('Haar cascades are verified against the manifest', () => {
  let svc: CvServe;
  let dir: string;

  before(async () => {
    // The shared models, except a face cascade altered by one byte.
    dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-tampered-'));
    const tampered = 'haarcascade_frontalface_alt.xml';
    for (const f of readdirSync(MODELS_DIR)) if (f !== tampered) symlinkSync(path.join(MODELS_DIR, f), path.join(dir, f));
    writeFileSync(path.join(dir, tampered), readFileSync(path.join(MODELS_DIR, tampered), 'utf8') + ' ');
    svc = await createTestApp({ modelsDir: dir });
  });
  after(async () => {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a cascade whose sha256 does not match, naming the file and both hashes', async () => {
    const res = await request(svc.app).post('/detect').attach('image', readFileSync(image('test_face_processing.jpg')), 'a.jpg');
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'MODEL_UNAVAILABLE');
    assert.match(res.body.message, /haarcascade_frontalface_alt\.xml .*sha256 [0-9a-f]{64}.*expects 6281df13/);
  });

  it('keeps the other cascade route working', async () => {
    const res = await request(svc.app).post('/catfacedetection').attach('image', readFileSync(image('cat_small.jpg')), 'cat.jpg');
    assert.equal(res.status, 200);
    assert.equal(res.body.result.length, 1);
  });
});
