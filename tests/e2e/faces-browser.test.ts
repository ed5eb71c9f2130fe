/**
 * The playground's Faces panel in a real headless Chromium (Debian's chromium + playwright-core):
 * register photos under names, see and edit the gallery, recognize a photo with the names drawn on
 * its boxes, at desktop and phone widths (320 px without sideways scrolling). The browser may reach
 * only this test's loopback server: every other request is blocked, and the test fails if one was
 * attempted. Screenshots go to tests/artifacts/faces-*.png.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { DESKTOP, launchTestBrowser, PHONE } from '../helpers/browser.js';
import { image, REPO_ROOT } from '../helpers/paths.js';
import { cropAround, faceTestConfig, nearest, PHOTO, SharedEngines, sqliteStore, transformedPhoto, untransform, type Store } from '../faces/harness.js';

const ARTIFACTS = path.join(REPO_ROOT, 'tests/artifacts');
const SCALE = 1.5;
/** Only loopback: 127.0.0.1, ::1 and localhost, any port. data: and blob: URLs never reach the network. */
const PEOPLE = ['alice', 'bob', 'carol'];

describe('the playground\'s Faces panel in headless Chromium', () => {
  const engines = new SharedEngines();
  let store: Store;
  let svc: CvServe;
  let server: http.Server;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let files: string;
  const problems: string[] = [];
  let blocked: string[] = [];
  const refused: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    store = sqliteStore();
    svc = await engines.app(faceTestConfig(store.settings));
    server = svc.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    // Photos a person would pick: three portraits cropped from the group photo, and the group flipped and rescaled.
    files = mkdtempSync(path.join(os.tmpdir(), 'cvserve-faces-browser-'));
    const { data, info } = await sharp(PHOTO).raw().toBuffer({ resolveWithObject: true });
    const boxes = (await engines.base.face.detect({ data, width: info.width, height: info.height, channels: 3 })).map((f) => f.box);
    for (const [i, name] of PEOPLE.entries()) writeFileSync(path.join(files, `${name}.jpg`), await cropAround(boxes[i]!));
    writeFileSync(path.join(files, 'group.jpg'), await transformedPhoto(SCALE));
    writeFileSync(path.join(files, 'boxes.json'), JSON.stringify(boxes));

    ({ browser, context, blocked } = await launchTestBrowser(DESKTOP));
    context.on('console', (m) => {
      if (m.type() !== 'error') return;
      // The browser reports every non-2xx answer; the one refused register (a photo without a face) is expected.
      if (m.text() === 'Failed to load resource: the server responded with a status of 400 (Bad Request)') refused.push(m.text());
      else problems.push(`console: ${m.text()}`);
    });
    context.on('weberror', (e) => problems.push(`pageerror: ${e.error().message}`));
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await svc?.close();
    await engines.close();
    await store?.destroy();
    if (files) rmSync(files, { recursive: true, force: true });
  });

  const shot = (name: string, on: Page = page) => on.screenshot({ path: path.join(ARTIFACTS, `faces-${name}.png`), fullPage: true });
  const galleryNames = (on: Page = page) => on.$$eval('#face-users .name', (els) => els.map((e) => e.textContent));

  async function register(name: string, file: string, on: Page = page): Promise<string> {
    await on.fill('#face-userid', name);
    await on.setInputFiles('#face-register-file', file);
    await on.waitForFunction((f) => document.getElementById('face-register-name')?.textContent?.startsWith(f), path.basename(file));
    await on.click('#face-register-run');
    await on.waitForFunction(() => !(document.getElementById('face-register-run') as HTMLButtonElement).disabled && !/…$/.test(document.getElementById('face-register-result')!.textContent ?? ''));
    return (await on.textContent('#face-register-result'))!;
  }

  async function recognize(file: string, on: Page = page): Promise<void> {
    await on.setInputFiles('#face-recognize-file', file);
    await on.waitForFunction((f) => document.getElementById('face-recognize-name')?.textContent?.startsWith(f), path.basename(file));
    await on.click('#face-recognize-run');
    await on.waitForSelector('#face-result .stage svg', { timeout: 120_000 });
    await on.waitForFunction(() => !(document.getElementById('face-recognize-run') as HTMLButtonElement).disabled);
  }

  it('opens at /#faces beside the capabilities, with an empty gallery', async () => {
    await page.goto(`${base}/#faces`);
    await page.waitForFunction(() => document.querySelector('#face-users li')?.textContent === 'Nobody registered yet.');
    assert.equal(await page.isVisible('#faces'), true);
    assert.equal(await page.isHidden('#work'), true);
    assert.equal(await page.getAttribute('#panels button[data-panel="faces"]', 'aria-current'), 'true');
    // The capabilities list is unchanged: the panel is not a route.
    assert.deepEqual(await page.$$eval('#routes button', (bs) => bs.map((b) => (b as HTMLElement).dataset.route)), svc.resources.map((r) => r.name));
  });

  it('registers three people from portrait crops and lists them; a photo without a face is refused and says so', async () => {
    assert.equal(await register('alice', path.join(files, 'alice.jpg')), 'Registered alice: 1 photo added.');
    // Bob's portrait shows a bit of a neighbour's face too: the largest face is registered, and the page says so.
    assert.equal(await register('bob', path.join(files, 'bob.jpg')), 'Registered bob: 1 photo added. 2 faces found; the largest was registered.');
    assert.equal(await register('carol', path.join(files, 'carol.jpg')), 'Registered carol: 1 photo added.');
    assert.equal(await register('alice', path.join(files, 'alice.jpg')), 'alice already has this photo: nothing added.');
    assert.match(await register('dave', image('cat_small.jpg')), /^Not registered: No face found in image/);
    assert.deepEqual(await galleryNames(), PEOPLE);
    assert.deepEqual(await page.$$eval('#face-users .photos', (els) => els.map((e) => e.textContent)), ['1 photo', '1 photo', '1 photo']);
    assert.deepEqual((await request(svc.app).post('/v1/vision/face/list')).body.faces, PEOPLE, 'the page shows what the API holds');
  });

  it('recognizes them in the flipped, rescaled group photo: their names on their boxes, the 14 others unknown', async () => {
    await recognize(path.join(files, 'group.jpg'));
    assert.equal(await page.locator('#face-result .stage svg rect.box').count(), 17);
    // Names in the answer's order: largest face first.
    assert.match((await page.textContent('#face-result .summary'))!, /^3 of 17 faces recognized: \w+, \w+, \w+$/);
    assert.deepEqual((await page.textContent('#face-result .summary'))!.split(': ')[1]!.split(', ').sort(), PEOPLE);
    const labels = await page.$$eval('#face-result .stage svg text', (ts) => ts.map((t) => t.textContent ?? ''));
    assert.equal(labels.filter((l) => l === 'unknown').length, 14);
    // Each name is drawn on the box of the right person: the one its portrait was cropped around.
    const boxes = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(path.join(files, 'boxes.json'), 'utf8'))) as number[][];
    const drawn = await page.$$eval('#face-result .stage svg rect.box', (rs) => rs.map((r) => ['x', 'y', 'width', 'height'].map((a) => Number(r.getAttribute(a)))));
    for (const [i, name] of PEOPLE.entries()) {
      const k = labels.findIndex((l) => l.startsWith(`${name} `));
      assert.ok(k >= 0, `${name} is drawn with a confidence`);
      const [x, y, w, h] = drawn[k]!;
      const [ox, oy] = untransform([x!, y!, x! + w!, y! + h!], SCALE);
      assert.equal(nearest(boxes, ox, oy).index, i, `${name}'s label is on ${name}'s face`);
    }
    const [img, overlay] = await Promise.all([page.locator('#face-result .stage img').boundingBox(), page.locator('#face-result .stage svg').boundingBox()]);
    for (const k of ['x', 'y', 'width', 'height'] as const) assert.ok(Math.abs(overlay![k] - img![k]) < 0.5, `the boxes sit on the image (${k})`);
    await shot('desktop');
  });

  it('the generic /facerecognition view captions its boxes with the names too', async () => {
    await page.click('#routes button[data-route="facerecognition"]');
    await page.waitForFunction(() => document.getElementById('route-title')?.textContent?.startsWith('/facerecognition '));
    assert.equal(await page.isHidden('#faces'), true);
    await page.setInputFiles('#file', path.join(files, 'group.jpg'));
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('group.jpg'));
    await page.click('#run');
    await page.waitForSelector('#result .stage svg', { timeout: 120_000 });
    const labels = await page.$$eval('#result .stage svg text', (ts) => ts.map((t) => (t.textContent ?? '').split(' ')[0]));
    assert.deepEqual(labels.filter((l) => l !== 'unknown').sort(), PEOPLE);
    await page.click('#panels button[data-panel="faces"]');
    await page.waitForFunction(() => !document.getElementById('faces')!.hidden && window.location.hash === '#faces');
  });

  it('deletes a person from the gallery; they are unknown afterwards', async () => {
    await page.click('#face-users button[aria-label="Delete bob"]');
    await page.waitForFunction(() => document.querySelectorAll('#face-users .name').length === 2);
    assert.deepEqual(await galleryNames(), ['alice', 'carol']);
    await recognize(path.join(files, 'group.jpg'));
    assert.deepEqual((await page.textContent('#face-result .summary'))!.split(': ')[1]!.split(', ').sort(), ['alice', 'carol']);
    assert.match((await page.textContent('#face-result .summary'))!, /^2 of 17 faces recognized: /);
  });

  it('works at phone width (390 px, and 320 px without sideways scrolling) with a sample photo', async () => {
    const phone = await context.newPage();
    await phone.setViewportSize(PHONE);
    await phone.goto(`${base}/#faces`);
    await phone.waitForFunction(() => document.querySelectorAll('#face-users .name').length === 2);
    // The astronaut sample: registered, then recognized.
    await phone.click('.face-samples[data-for="register"] button[data-sample="astronaut.jpg"]');
    await phone.waitForFunction(() => document.getElementById('face-register-name')?.textContent?.startsWith('data/astronaut.jpg'));
    await phone.fill('#face-userid', 'eileen');
    await phone.click('#face-register-run');
    await phone.waitForFunction(() => document.querySelectorAll('#face-users .name').length === 3);
    await phone.click('.face-samples[data-for="recognize"] button[data-sample="astronaut.jpg"]');
    await phone.waitForFunction(() => document.getElementById('face-recognize-name')?.textContent?.startsWith('data/astronaut.jpg'));
    await phone.click('#face-recognize-run');
    await phone.waitForSelector('#face-result .stage svg');
    assert.equal(await phone.textContent('#face-result .summary'), '1 of 1 face recognized: eileen');
    await recognize(path.join(files, 'group.jpg'), phone);
    for (const width of [390, 320]) {
      await phone.setViewportSize({ width, height: 844 });
      const [scrollWidth, innerWidth] = await phone.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scrollWidth <= innerWidth, `${width} px: ${scrollWidth} > ${innerWidth}`);
      assert.ok(await phone.isVisible('#panels button[data-panel="faces"]'), 'the Faces button stays in view');
    }
    await phone.setViewportSize(PHONE);
    await shot('phone', phone);
    // Back to a capability, and back to Faces through the address bar.
    await phone.click('#routes button[data-route="facedetection"]');
    assert.equal(await phone.isHidden('#faces'), true);
    await phone.evaluate(() => (window.location.hash = '#faces'));
    await phone.waitForFunction(() => !document.getElementById('faces')!.hidden);
    await phone.close();
  });

  it('made no request outside the machine and logged no error', () => {
    assert.deepEqual(blocked, []);
    assert.deepEqual(problems, []);
    assert.equal(refused.length, 1, 'one 400: the photo without a face');
  });
});
