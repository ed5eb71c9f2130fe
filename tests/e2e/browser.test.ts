import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import request from 'supertest';
import { z } from 'zod';
import type { ResourceDeclaration } from '../../src/resources/define.js';
import type { CvServe } from '../../src/app.js';
import { docsRouter } from '../../src/http/docs.js';
import { serviceOpenApi } from '../../src/openapi-document.js';
import { createTestApp } from '../helpers/app.js';
import { Gate } from '../helpers/gates.js';
import { listen } from '../helpers/http.js';
import { DESKTOP, launchTestBrowser, PHONE } from '../helpers/browser.js';
import { image, REPO_ROOT } from '../helpers/paths.js';
import { servePhotos } from '../helpers/photo-server.js';

/**
 * The playground and /docs in a real headless Chromium (Debian's chromium package): every action a
 * person takes, and what they see, at desktop and phone widths. The browser may reach only the
 * loopback servers of this test: every other request is blocked, and the test fails if one was
 * attempted. Screenshots go to tests/artifacts/ (git-ignored).
 */

const ARTIFACTS = path.join(REPO_ROOT, 'tests/artifacts');
const CAT_CLASSES = ['tabby', 'tiger cat', 'Egyptian cat', 'Siamese cat', 'Persian cat'];
const run = promisify(execFile);
const sample = (name: string) => path.join(REPO_ROOT, 'data', name);

/** Only loopback: 127.0.0.1, ::1 and localhost, any port. data: and blob: URLs never reach the network. */

/** Which sample each capability is shown with, and what a person must see (built-ins; any other route gets the astronaut). */
const SHOWN_WITH: Record<string, { file: string; see: string }> = {
  canny: { file: 'coffee.jpg', see: '.pair figure:nth-child(2) img' },
  detect: { file: 'astronaut.jpg', see: '.stage svg' },
  catfacedetection: { file: 'chelsea.jpg', see: '.summary' },
  catdetection: { file: 'chelsea.jpg', see: '.stage svg' },
  predict: { file: 'chelsea.jpg', see: '.bars li' },
  upscale: { file: 'chelsea.jpg', see: '.pair figure:nth-child(2) img' },
  histogram: { file: 'coffee.jpg', see: '.pair figure:nth-child(2) img' },
};

/** An image route that reports step i of the gates' count, then waits at gate i; answers the input. */
function heldSteps(gates: Gate[]): ResourceDeclaration<z.ZodObject> {
  return {
    name: 'steps',
    summary: 'reports progress, held by the test',
    params: z.strictObject({}),
    output: { kind: 'image', defaultFormat: 'input' },
    async run(input, _params, ctx) {
      for (let i = 1; i <= gates.length; i++) {
        ctx.progress?.(i, gates.length);
        await gates[i - 1]!.pass();
      }
      return { kind: 'image', image: await input.rgb(), format: 'input' };
    },
  };
}

describe('playground and docs in headless Chromium', () => {
  let svc: CvServe;
  let server: http.Server;
  let photos: Awaited<ReturnType<typeof servePhotos>>;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  let blocked: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    svc = await createTestApp({ pluginsDir: path.join(REPO_ROOT, 'examples/plugins'), allowPrivateNetworks: true });
    server = svc.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    photos = await servePhotos(['test_face_processing.jpg', 'cat_small.jpg']);

    ({ browser, context, blocked } = await launchTestBrowser(DESKTOP));
    context.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    context.on('weberror', (e) => problems.push(`pageerror: ${e.error().message}`));
    page = await context.newPage();
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await photos?.close();
    await svc?.close();
  });

  async function choose(route: string, on: Page = page): Promise<void> {
    await on.click(`#routes button[data-route="${route}"]`);
    await on.waitForFunction((r) => document.getElementById('route-title')?.textContent?.startsWith(`/${r} `), route);
  }

  async function pick(file: string, name = path.basename(file), on: Page = page): Promise<void> {
    await on.setInputFiles('#file', file);
    await on.waitForFunction((n) => document.getElementById('image-name')?.textContent?.startsWith(n), name);
  }

  async function runAndWait(selector: string, on: Page = page): Promise<void> {
    await on.click('#run');
    await on.waitForSelector(selector, { timeout: 60_000 });
    await on.waitForFunction(() => !(document.getElementById('run') as HTMLButtonElement).disabled);
  }

  const shot = (name: string, on: Page = page) => on.screenshot({ path: path.join(ARTIFACTS, `playground-${name}.png`), fullPage: true });
  const noSidewaysScroll = (on: Page) => on.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);

  it('loads / and lists every route from /openapi.json, the plugin included', async () => {
    await page.goto(`${base}/`);
    await page.waitForSelector('#routes button');
    const listed = await page.$$eval('#routes button', (bs) => bs.map((b) => (b as HTMLElement).dataset.route));
    assert.deepEqual(listed, svc.resources.map((r) => r.name));
    assert.ok(listed.includes('histogram'));
    assert.equal(await page.title(), 'cvserve playground');
    assert.deepEqual(await page.$$eval('#samples button', (bs) => bs.map((b) => (b as HTMLElement).dataset.sample)), ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg']);
  });

  it('runs /predict on cat_small.jpg: a cat class first, as bars, beside the input image', async () => {
    await choose('predict');
    assert.equal(await page.inputValue('#param-top'), '5');
    await pick(image('cat_small.jpg'));
    await runAndWait('.bars li');
    const labels = await page.$$eval('.bars li .label', (els) => els.map((e) => e.textContent));
    assert.equal(labels.length, 5);
    assert.ok(CAT_CLASSES.includes(labels[0]!), `first label ${labels[0]}`);
    const widths = await page.$$eval('.bars .bar span', (els) => els.map((e) => parseFloat((e as HTMLElement).style.width)));
    assert.ok(widths[0]! > 0 && widths.every((w, i) => i === 0 || w <= widths[i - 1]!), `bars best first: ${widths}`);
    assert.deepEqual(await page.$eval('.classified figure img', (i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight]), [1000, 1334]);
    assert.match((await page.textContent('#timing'))!, /^\d+ ms · HTTP 200$/);
  });

  it('runs /detect on test_face_processing.jpg and draws the 17 boxes over the input where the API puts them', async () => {
    await choose('detect');
    await pick(image('test_face_processing.jpg'));
    await runAndWait('.stage svg');
    assert.equal(await page.locator('.stage svg rect.box').count(), 17);
    assert.equal(await page.textContent('.summary'), '17 boxes found');
    const drawn = await page.$$eval('.stage svg rect.box', (rs) => rs.map((r) => ['x', 'y', 'width', 'height'].map((a) => Number(r.getAttribute(a)))));
    const api = await request(svc.app).post('/detect').attach('image', readFileSync(image('test_face_processing.jpg')), 'faces.jpg');
    assert.deepEqual(drawn, api.body.result.map(({ box: [x1, y1, x2, y2] }: { box: number[] }) => [x1, y1, x2! - x1!, y2! - y1!]));
    // The overlay covers the displayed image exactly.
    const [img, svg] = await Promise.all([page.locator('.stage img').boundingBox(), page.locator('.stage svg').boundingBox()]);
    assert.deepEqual(svg, img);
  });

  it('with draw=true shows the drawn image, the box count and a download of it', async () => {
    await page.check('#param-draw');
    await runAndWait('.pair figure:nth-child(2) img');
    assert.equal(await page.textContent('.summary'), '17 boxes found');
    const link = page.locator('a.download');
    assert.equal(await link.getAttribute('download'), 'detect.jpg');
    const download = await Promise.all([page.waitForEvent('download'), link.click()]).then(([d]) => d);
    const saved = path.join(mkdtempSync(path.join(os.tmpdir(), 'cvserve-dl-')), 'detect.jpg');
    await download.saveAs(saved);
    const api = await request(svc.app).post('/detect?draw=true').attach('image', readFileSync(image('test_face_processing.jpg')), 'faces.jpg');
    assert.ok(readFileSync(saved).equals(api.body as Buffer), 'the download is the drawn answer');
    rmSync(path.dirname(saved), { recursive: true, force: true });
    await shot('detect-draw');
    await page.uncheck('#param-draw');
  });

  it('runs /canny: output beside the input, labelled zoom panes, a download button', async () => {
    await choose('canny');
    await pick(image('cat_small.jpg'));
    await runAndWait('.pair figure:nth-child(2) img');
    const sizes = await page.$$eval('.pair img', (imgs) => imgs.map((i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight, (i as HTMLImageElement).src.slice(0, 23)]));
    assert.deepEqual(sizes, [
      [1000, 1334, 'data:image/jpeg;base64,'],
      [1000, 1334, 'data:image/jpeg;base64,'],
    ]);
    assert.match((await page.textContent('.pair figure:nth-child(2) figcaption'))!, /^Output · 1000×1334 · jpeg · \d+ KiB$/);
    assert.deepEqual(await page.$$eval('.zoom figcaption', (els) => els.map((e) => e.textContent)), ['Input, same detail', 'Output, detail']);
    assert.equal(await page.getAttribute('a.download', 'download'), 'canny.jpg');
    await page.hover('.pair figure:nth-child(2) img', { position: { x: 100, y: 100 } });
    const zoomAt = await page.$eval('.zoom .zoom-out', (d) => (d as HTMLElement).style.backgroundPosition);
    assert.match(zoomAt, /^-?\d+px -?\d+px$/);
  });

  it('copies /canny as a curl command that gives the same image', async () => {
    await page.fill('#param-threshold1', '60');
    await page.click('#curl');
    const command = (await page.textContent('#curl-text'))!;
    assert.equal(command, `curl -sS -F image=@cat_small.jpg --form-string threshold1=60 ${base}/canny -o canny.jpg`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-curl-'));
    try {
      await run('sh', ['-c', `cp '${image('cat_small.jpg')}' . && ${command}`], { cwd: dir });
      const api = await request(svc.app).post('/canny?threshold1=60').attach('image', readFileSync(image('cat_small.jpg')), 'cat.jpg');
      assert.ok(readFileSync(path.join(dir, 'canny.jpg')).equals(api.body as Buffer), 'the curl command answers what the API does');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tries a sample from data/: the astronaut on /detect, and its curl command runs in a clone as it is', async () => {
    await choose('detect');
    await page.click('#samples button[data-sample="astronaut.jpg"]');
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('data/astronaut.jpg'));
    await runAndWait('.stage svg');
    assert.equal(await page.textContent('.summary'), '1 box found');
    await page.click('#curl');
    const command = (await page.textContent('#curl-text'))!;
    assert.equal(command, `curl -sS -F image=@data/astronaut.jpg ${base}/detect`);
    const { stdout } = await run('sh', ['-c', command], { cwd: REPO_ROOT });
    assert.deepEqual(JSON.parse(stdout), { status: 'ok', result: [{ box: [176, 67, 273, 164] }] });
    const served = await request(svc.app).get('/playground/samples/astronaut.jpg');
    assert.ok((served.body as Buffer).equals(readFileSync(sample('astronaut.jpg'))), 'the sample is the committed file');
    for (const name of ['README.md', '..%2Fpackage.json', 'astronaut.png', '.gitkeep']) {
      assert.equal((await request(svc.app).get(`/playground/samples/${name}`)).status, 404, name);
    }
  });

  it('switches capability when the address hash changes after load', async () => {
    await page.evaluate(() => (window.location.hash = '#predict'));
    await page.waitForFunction(() => document.getElementById('route-title')?.textContent?.startsWith('/predict '));
    assert.equal(await page.getAttribute('#routes button[data-route="predict"]', 'aria-current'), 'true');
    await page.evaluate(() => (window.location.hash = '#canny'));
    await page.waitForFunction(() => document.getElementById('route-title')?.textContent?.startsWith('/canny '));
  });

  it('shows a spinner while a request runs, and each progress step while the work is still held', async () => {
    // A stand-in image route that reports step i of 3, then waits until the test opens gate i: the
    // page must show each step while the work is held (a server that sent every event at the end,
    // or a page that ignored them, fails here).
    const gates = [new Gate(), new Gate(), new Gate()];
    const held = await createTestApp({}, { resources: [heldSteps(gates)] }, { waitForWorkers: false });
    const heldServer = await listen(held.handler);
    const other = await context.newPage();
    try {
      await other.goto(`${heldServer.url}/#steps`);
      await other.waitForFunction(() => document.getElementById('route-title')?.textContent?.startsWith('/steps '));
      await pick(sample('chelsea.jpg'), 'chelsea.jpg', other);
      await other.click('#run');
      await other.waitForSelector('#busy:not([hidden]) .spinner');
      assert.equal(await other.isDisabled('#run'), true);
      for (let step = 1; step <= 3; step++) {
        await gates[step - 1]!.whenEntered();
        await other.waitForFunction((n) => (document.getElementById('progress') as HTMLProgressElement).value === n, step, { timeout: 60_000 });
        assert.deepEqual(await other.$eval('#progress', (p) => [(p as HTMLProgressElement).hidden, (p as HTMLProgressElement).value, (p as HTMLProgressElement).max]), [false, step, 3]);
        assert.equal(await other.textContent('#busy-text'), `Running… ${step} of 3`);
        if (step === 2) await shot('steps-running', other);
        gates[step - 1]!.open();
      }
      await other.waitForSelector('.pair figure:nth-child(2) img', { timeout: 60_000 });
      await other.waitForSelector('#busy', { state: 'hidden' });
      assert.deepEqual(await other.$$eval('.pair img', (imgs) => imgs.map((i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight])), [
        [451, 300],
        [451, 300],
      ]);
    } finally {
      for (const g of gates) g.open();
      await other.close();
      await heldServer.close();
      await held.close();
    }
  });

  it('shows a readable error for a text file', async () => {
    await choose('detect');
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('These are notes, not a photo.\n') });
    await page.click('#run');
    await page.waitForSelector('#error:not([hidden])');
    assert.equal(await page.textContent('#error strong'), 'Unsupported image type: send JPEG, PNG, WebP, GIF, TIFF or AVIF');
    assert.equal(await page.textContent('#error .muted'), 'HTTP 415 · UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await page.locator('#result > *').count(), 0);
    await shot('error');
  });

  it('takes an image by drag and drop, by paste and by URL', async () => {
    await choose('catfacedetection');
    const bytes = readFileSync(image('cat_small.jpg')).toString('base64');
    const dropped = await page.evaluateHandle((b64) => {
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([data], 'dropped-cat.jpg', { type: 'image/jpeg' }));
      return dt;
    }, bytes);
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped });
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('dropped-cat.jpg'));
    await runAndWait('.stage svg');
    assert.equal(await page.textContent('.summary'), '1 box found');

    await page.evaluate((b64) => {
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([data], 'image.png', { type: 'image/jpeg' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
    }, bytes);
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('pasted.jpeg'));

    await choose('detect');
    await page.fill('#url', `${photos.base}/test_face_processing.jpg`);
    await runAndWait('.stage svg');
    assert.equal(await page.locator('.stage svg rect.box').count(), 17);
    assert.equal(await page.getAttribute('.stage img', 'src'), `${photos.base}/test_face_processing.jpg`);
    await page.click('#curl');
    assert.equal(await page.textContent('#curl-text'), `curl -sS '${base}/detect?url=${encodeURIComponent(`${photos.base}/test_face_processing.jpg`)}'`);
    await shot('detect-url');
    await page.fill('#url', '');
  });

  it('labels the boxes of /catdetection with class and score', async () => {
    await choose('catdetection');
    await pick(image('cat_small.jpg'));
    await runAndWait('.stage svg');
    const api = await request(svc.app).post('/catdetection').attach('image', readFileSync(image('cat_small.jpg')), 'cat.jpg');
    assert.equal(api.body.result.length, 1);
    assert.equal(await page.locator('.stage svg rect.box').count(), 1);
    assert.equal(await page.textContent('.stage svg text'), `cat ${Math.round(api.body.result[0].score * 100)}%`);
  });

  it('shows /upscale output beside its input, and the /histogram plugin chart', async () => {
    const crop = await sharp(image('car.jpg')).extract({ left: 330, top: 720, width: 330, height: 220 }).jpeg({ quality: 95 }).toBuffer();
    await choose('upscale');
    await page.setInputFiles('#file', { name: 'car-crop.jpg', mimeType: 'image/jpeg', buffer: crop });
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('car-crop.jpg'));
    await runAndWait('.pair figure:nth-child(2) img');
    assert.deepEqual(await page.$$eval('.pair img', (imgs) => imgs.map((i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight])), [
      [330, 220],
      [990, 660],
    ]);

    await choose('histogram');
    await pick(image('cat_small.jpg'));
    await runAndWait('.pair figure:nth-child(2) img');
    assert.deepEqual(await page.$eval('.pair figure:nth-child(2) img', (i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight]), [512, 256]);
  });

  for (const [label, viewport] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    it(`runs every capability on a sample at ${label} width (${viewport.width}x${viewport.height}) with no sideways scrolling`, async () => {
      const view = await context.newPage();
      try {
        await view.setViewportSize(viewport);
        await view.goto(`${base}/`);
        await view.waitForSelector('#samples button');
        for (const resource of svc.resources) {
          const plan = SHOWN_WITH[resource.name] ?? { file: 'astronaut.jpg', see: '#result > *' };
          await choose(resource.name, view);
          await view.click(`#samples button[data-sample="${plan.file}"]`);
          await view.waitForFunction((n) => document.getElementById('image-name')?.textContent?.startsWith(`data/${n}`), plan.file);
          await view.click('#run');
          await view.waitForSelector(`${plan.see}, #error:not([hidden])`, { timeout: 60_000 });
          await view.waitForFunction(() => !(document.getElementById('run') as HTMLButtonElement).disabled);
          if (SHOWN_WITH[resource.name]) assert.equal(await view.isHidden('#error'), true, `/${resource.name}: ${await view.textContent('#error')}`);
          const [scrollWidth, innerWidth] = await noSidewaysScroll(view);
          assert.ok(scrollWidth <= innerWidth, `/${resource.name} at ${label}: ${scrollWidth} > ${innerWidth}`);
          await shot(`${resource.name}-${label}`, view);
        }
        if (label === 'phone') {
          const key = (await view.locator('#api-key').boundingBox())!;
          assert.ok(key.x >= 0 && key.x + key.width <= viewport.width, `API key box ${JSON.stringify(key)}`);
          const [drop, url] = [(await view.locator('#drop').boundingBox())!, (await view.locator('#url').boundingBox())!];
          assert.ok(url.x >= drop.x && url.x + url.width <= drop.x + drop.width, 'URL input inside the drop zone');
          const work = (await view.locator('#work').boundingBox())!;
          assert.ok(work.y < viewport.height / 3, `the capability list leaves the form on the first screen (#work at ${work.y})`);
          for (const width of [320, 360]) {
            await view.setViewportSize({ width, height: 700 });
            const [sw, iw] = await noSidewaysScroll(view);
            assert.ok(sw <= iw, `${width} px: ${sw} > ${iw}`);
          }
        }
      } finally {
        await view.close();
      }
    });
  }

  it('/docs: Try it out on POST /detect with test_face_processing.jpg, fields as offered, finds the 17 faces a plain curl finds', async () => {
    const docs = await context.newPage();
    try {
      await docs.goto(`${base}/docs`);
      for (const [route, photo] of [['detect', 'test_face_processing.jpg'], ['catfacedetection', 'cat_small.jpg']] as const) {
        const op = `#operations-resources-${route}`;
        await docs.waitForSelector(op, { timeout: 30_000 });
        await docs.click(`${op} .opblock-summary`);
        await docs.click(`${op} .try-out__btn`);
        await docs.setInputFiles(`${op} input[type=file]`, image(photo));
        await docs.click(`${op} .execute`);
        const body = await docs.waitForSelector(`${op} .live-responses-table .response-col_description pre`, { timeout: 60_000 });
        const answer = JSON.parse((await body.textContent())!);
        const { stdout } = await run('curl', ['-sS', '-F', `image=@${image(photo)}`, `${base}/${route}`]);
        assert.deepEqual(answer, JSON.parse(stdout), `/${route}: Try it out answers what curl does`);
        if (route === 'detect') {
          assert.equal(answer.result.length, 17);
          await docs.locator(op).screenshot({ path: path.join(ARTIFACTS, 'docs-detect-try-it-out.png') });
        } else assert.equal(answer.result.length, 1);
      }
      assert.equal(await docs.getAttribute('.cvserve-bar a', 'href'), '../');
      await docs.click('.cvserve-bar a');
      await docs.waitForSelector('#routes button');
      assert.equal(new URL(docs.url()).pathname, '/');
    } finally {
      await docs.close();
    }
  });

  it('/docs shows locks and Authorize only when the service has API keys', async () => {
    for (const apiKeys of [false, true]) {
      const app = express().use(docsRouter(svc.resources, serviceOpenApi(svc.resources, { apiKeys, manifest: svc.engines.models.manifest })));
      const docsServer = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => docsServer.once('listening', resolve));
      const docs = await context.newPage();
      try {
        await docs.goto(`http://127.0.0.1:${(docsServer.address() as AddressInfo).port}/docs/`);
        await docs.waitForSelector('#operations-resources-detect', { timeout: 30_000 });
        const authorize = await docs.locator('.btn.authorize').count();
        const locks = await docs.locator('.authorization__btn').count();
        if (apiKeys) assert.ok(authorize === 1 && locks > 0, `with keys: ${authorize} Authorize, ${locks} locks`);
        else assert.deepEqual([authorize, locks], [0, 0]);
        await docs.screenshot({ path: path.join(ARTIFACTS, `docs-${apiKeys ? 'keys' : 'no-keys'}.png`) });
      } finally {
        await docs.close();
        await new Promise((resolve) => docsServer.close(resolve));
      }
    }
  });

  it('logged no page errors and asked nothing of any other host', () => {
    // The one failed load is the text file's 415, which Chromium reports on the console.
    assert.deepEqual(problems, ['console: Failed to load resource: the server responded with a status of 415 (Unsupported Media Type)']);
    assert.deepEqual(blocked, []);
  });
});
