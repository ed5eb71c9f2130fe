import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import type { Config } from '../../src/config.js';
import { createTestApp } from '../helpers/app.js';
import { brief } from '../helpers/http.js';
import { image } from '../helpers/paths.js';
import { localServer, serveBytes, type Handler, type LocalServer } from '../helpers/photo-server.js';
import { sizeResource } from '../helpers/resources.js';

/**
 * Settings that are read once and handed down to the request path, each given a value other than
 * its default through the app: were the line passing it on dropped, the default would apply and
 * these answers would change.
 */

const jpeg = readFileSync(image('test_face_processing.jpg'));
const SIZE = { width: 640, height: 482 };

function expectError(res: request.Response, status: number, code: string, message: RegExp): void {
  assert.equal(res.status, status, brief(res));
  assert.equal(res.body.code, code, brief(res));
  assert.match(res.body.message, message);
}

/** An app serving only the instant `/size` route (parameters a, b, c, d, note), no workers needed. */
const sizeApp = (overrides: Partial<Config>) =>
  createTestApp({ opencvWorkers: 1, ...overrides }, { resources: [sizeResource('size', ['a', 'b', 'c', 'd', 'note'])] }, { waitForWorkers: false });

describe('?url= settings: CVSERVE_URL_MAX_REDIRECTS and CVSERVE_URL_MAX_LENGTH', () => {
  let svc: CvServe;
  let images: LocalServer;
  const redirect = (to: () => string): Handler => (_req, res) => res.writeHead(302, { Location: to() }).end();

  before(async () => {
    images = await localServer();
    images.routes.set('/img.jpg', serveBytes(jpeg, 'image/jpeg'));
    images.routes.set('/one', redirect(() => '/img.jpg'));
    images.routes.set('/two', redirect(() => '/one'));
    images.routes.set('/to-long', redirect(() => `/${'x'.repeat(80)}.jpg`));
    // Loopback image server: private networks allowed in this app only (its hooks still refuse anything but loopback).
    svc = await sizeApp({ allowPrivateNetworks: true, urlMaxRedirects: 1, urlMaxLength: 64 });
  });
  after(async () => {
    await svc.close();
    await images.close();
  });

  const viaUrl = (url: string) => request(svc.app).get(`/size?url=${encodeURIComponent(url)}`);

  it('follows one redirect, and refuses a second with 502 (the default would follow three)', async () => {
    const one = await viaUrl(images.url('/one'));
    assert.equal(one.status, 200, brief(one));
    assert.deepEqual(one.body, SIZE);
    const before = images.hits('/img.jpg');
    expectError(await viaUrl(images.url('/two')), 502, 'URL_FETCH_FAILED', /redirected more than 1 times/);
    assert.equal(images.hits('/img.jpg'), before, 'the image behind the second redirect was never fetched');
  });

  it('refuses a ?url= longer than 64 characters with 400, and a redirect to one with 502 (the default allows 2048)', async () => {
    const long = images.url(`/${'a'.repeat(64)}.jpg`);
    expectError(await viaUrl(long), 400, 'INVALID_URL', new RegExp(`url is too long \\(${long.length} characters, at most 64\\)`));
    assert.equal(images.hits(`/${'a'.repeat(64)}.jpg`), 0, 'nothing was fetched');
    expectError(await viaUrl(images.url('/to-long')), 502, 'URL_FETCH_FAILED', /redirected to a URL longer than 64 characters/);
    const short = images.url('/img.jpg');
    assert.ok(short.length <= 64);
    assert.equal((await viaUrl(short)).status, 200);
  });
});

describe('form and query settings: CVSERVE_MAX_FIELDS and CVSERVE_MAX_FIELD_BYTES', () => {
  let svc: CvServe;
  before(async () => {
    svc = await sizeApp({ maxFields: 3, maxFieldBytes: 32 });
  });
  after(() => svc.close());

  const post = (query = '') => request(svc.app).post(`/size${query}`);

  it('takes three query parameters and refuses four (the default allows 50)', async () => {
    const three = await post('?a=1&b=2&c=3').set('Content-Type', 'image/jpeg').send(jpeg);
    assert.equal(three.status, 200, brief(three));
    expectError(await post('?a=1&b=2&c=3&d=4').set('Content-Type', 'image/jpeg').send(jpeg), 400, 'BAD_PARAMETER', /Too many query parameters \(limit 3\)/);
  });

  it('refuses a fourth form field and a fourth JSON field', async () => {
    const three = await post().field('a', '1').field('b', '2').field('c', '3').attach('image', jpeg, 'a.jpg');
    assert.equal(three.status, 200, brief(three));
    expectError(await post().field('a', '1').field('b', '2').field('c', '3').field('d', '4').attach('image', jpeg, 'a.jpg'), 400, 'BAD_MULTIPART', /Too many form fields/);
    const json = { imageBase64: jpeg.toString('base64'), a: '1', b: '2', c: '3' };
    assert.equal((await post().send(json)).status, 200);
    expectError(await post().send({ ...json, d: '4' }), 400, 'BAD_PARAMETER', /Too many fields \(limit 3\)/);
  });

  it('takes a 32-byte form field and refuses a 33-byte one with 413 (the default allows 64 KiB)', async () => {
    const fits = await post().field('note', 'n'.repeat(32)).attach('image', jpeg, 'a.jpg');
    assert.equal(fits.status, 200, brief(fits));
    expectError(await post().field('note', 'n'.repeat(33)).attach('image', jpeg, 'a.jpg'), 413, 'PAYLOAD_TOO_LARGE', /Form field note is too large/);
  });
});
