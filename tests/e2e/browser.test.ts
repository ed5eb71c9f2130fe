import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { createTestApp } from '../helpers/app.js';
import { image, REPO_ROOT } from '../helpers/paths.js';

/**
 * The playground in a real headless Chromium (Debian's chromium package): every action a person
 * takes, and what they see. Screenshots go to tests/artifacts/ (git-ignored).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'tests/artifacts');
const CAT_CLASSES = ['tabby', 'tiger cat', 'Egyptian cat', 'Siamese cat', 'Persian cat'];
const run = promisify(execFile);

describe('playground in headless Chromium', () => {
  let svc: CvServe;
  let server: http.Server;
  let images: http.Server;
  let base: string;
  let imagesBase: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    svc = await createTestApp({ pluginsDir: path.join(REPO_ROOT, 'examples/plugins'), allowPrivateNetworks: true });
    server = svc.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A local image host for the URL way.
    images = http.createServer((req, res) => {
      const name = path.basename(decodeURIComponent(req.url ?? ''));
      try {
        res.writeHead(200, { 'Content-Type': 'image/jpeg' }).end(readFileSync(image(name)));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
    imagesBase = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    // Nothing may leave 127.0.0.1: no CDN, no fonts, no telemetry.
    page.on('request', (r) => {
      if (!/^(http:\/\/127\.0\.0\.1:\d+\/|data:|blob:)/.test(r.url())) problems.push(`outside request: ${r.url()}`);
    });
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await new Promise((resolve) => images?.close(resolve));
    await svc?.close();
  });

  async function choose(route: string): Promise<void> {
    await page.click(`#routes button[data-route="${route}"]`);
    await page.waitForFunction((r) => document.getElementById('route-title')?.textContent?.startsWith(`/${r} `), route);
  }

  async function runAndWait(selector: string): Promise<void> {
    await page.click('#run');
    await page.waitForSelector(selector, { timeout: 60_000 });
    await page.waitForFunction(() => !(document.getElementById('run') as HTMLButtonElement).disabled);
  }

  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `playground-${name}.png`), fullPage: true });

  it('loads / and lists every route from /openapi.json, the plugin included', async () => {
    await page.goto(`${base}/`);
    await page.waitForSelector('#routes button');
    const listed = await page.$$eval('#routes button', (bs) => bs.map((b) => (b as HTMLElement).dataset.route));
    assert.deepEqual(listed, svc.resources.map((r) => r.name));
    assert.ok(listed.includes('histogram'));
    assert.ok(listed.includes('predict') && listed.includes('detect') && listed.includes('canny'));
    assert.equal(await page.title(), 'cvserve playground');
  });

  it('runs /predict on cat_small.jpg and shows a cat class first, as bars, with the time taken', async () => {
    await choose('predict');
    assert.equal(await page.inputValue('#param-top'), '5');
    await page.setInputFiles('#file', image('cat_small.jpg'));
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('cat_small.jpg'));
    await runAndWait('.bars li');
    const labels = await page.$$eval('.bars li .label', (els) => els.map((e) => e.textContent));
    assert.equal(labels.length, 5);
    assert.ok(CAT_CLASSES.includes(labels[0]!), `first label ${labels[0]}`);
    const widths = await page.$$eval('.bars .bar span', (els) => els.map((e) => parseFloat((e as HTMLElement).style.width)));
    assert.ok(widths[0]! > 0 && widths.every((w, i) => i === 0 || w <= widths[i - 1]!), `bars best first: ${widths}`);
    assert.match((await page.textContent('#timing'))!, /^\d+ ms · HTTP 200$/);
    await shot('predict');
  });

  it('runs /detect on test_face_processing.jpg and draws the 17 boxes over the input where the API puts them', async () => {
    await choose('detect');
    await page.setInputFiles('#file', image('test_face_processing.jpg'));
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('test_face_processing.jpg'));
    await runAndWait('.stage svg');
    assert.equal(await page.locator('.stage svg rect.box').count(), 17);
    assert.equal(await page.textContent('.summary'), '17 boxes found');
    const drawn = await page.$$eval('.stage svg rect.box', (rs) => rs.map((r) => ['x', 'y', 'width', 'height'].map((a) => Number(r.getAttribute(a)))));
    const api = await request(svc.app).post('/detect').attach('image', readFileSync(image('test_face_processing.jpg')), 'faces.jpg');
    assert.deepEqual(drawn, api.body.result.map(({ box: [x1, y1, x2, y2] }: { box: number[] }) => [x1, y1, x2! - x1!, y2! - y1!]));
    // The overlay covers the displayed image exactly.
    const [img, svg] = await Promise.all([page.locator('.stage img').boundingBox(), page.locator('.stage svg').boundingBox()]);
    assert.deepEqual(svg, img);
    await shot('detect');
  });

  it('runs /canny and shows the output image beside the input, with a zoomed detail', async () => {
    await choose('canny');
    await page.setInputFiles('#file', image('cat_small.jpg'));
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('cat_small.jpg'));
    await runAndWait('.pair figure:nth-child(2) img');
    const sizes = await page.$$eval('.pair img', (imgs) => imgs.map((i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight, (i as HTMLImageElement).src.slice(0, 23)]));
    assert.deepEqual(sizes, [
      [1000, 1334, 'data:image/jpeg;base64,'],
      [1000, 1334, 'data:image/jpeg;base64,'],
    ]);
    assert.match((await page.textContent('.pair figure:nth-child(2) figcaption'))!, /^Output · 1000×1334 · jpeg · \d+ KiB$/);
    assert.equal(await page.locator('.zoom div').count(), 2);
    await page.hover('.pair figure:nth-child(2) img', { position: { x: 100, y: 100 } });
    const zoomAt = await page.$eval('.zoom div:nth-child(2)', (d) => (d as HTMLElement).style.backgroundPosition);
    assert.match(zoomAt, /^-?\d+px -?\d+px$/);
    await shot('canny');
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
    await page.fill('#url', `${imagesBase}/test_face_processing.jpg`);
    await runAndWait('.stage svg');
    assert.equal(await page.locator('.stage svg rect.box').count(), 17);
    assert.equal(await page.getAttribute('.stage img', 'src'), `${imagesBase}/test_face_processing.jpg`);
    await page.click('#curl');
    assert.equal(await page.textContent('#curl-text'), `curl -sS '${base}/detect?url=${encodeURIComponent(`${imagesBase}/test_face_processing.jpg`)}'`);
    await shot('detect-url');
  });

  it('labels the boxes of /catdetection with class and score', async () => {
    await page.fill('#url', '');
    await choose('catdetection');
    await page.setInputFiles('#file', image('cat_small.jpg'));
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('cat_small.jpg'));
    await runAndWait('.stage svg');
    const api = await request(svc.app).post('/catdetection').attach('image', readFileSync(image('cat_small.jpg')), 'cat.jpg');
    assert.equal(api.body.result.length, 1);
    assert.equal(await page.locator('.stage svg rect.box').count(), 1);
    assert.equal(await page.textContent('.stage svg text'), `cat ${Math.round(api.body.result[0].score * 100)}%`);
    await shot('catdetection');
  });

  it('shows /upscale output beside its input, and the /histogram plugin chart', async () => {
    const crop = await sharp(image('car.jpg')).extract({ left: 330, top: 720, width: 330, height: 220 }).jpeg({ quality: 95 }).toBuffer();
    await choose('upscale');
    await page.setInputFiles('#file', { name: 'car-crop.jpg', mimeType: 'image/jpeg', buffer: crop });
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('car-crop.jpg'));
    await runAndWait('.pair figure:nth-child(2) img');
    const sizes = await page.$$eval('.pair img', (imgs) => imgs.map((i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight]));
    assert.deepEqual(sizes, [
      [330, 220],
      [990, 660],
    ]);
    await shot('upscale');

    await choose('histogram');
    await page.setInputFiles('#file', image('cat_small.jpg'));
    await page.waitForFunction(() => document.getElementById('image-name')?.textContent?.startsWith('cat_small.jpg'));
    await runAndWait('.pair figure:nth-child(2) img');
    assert.deepEqual(await page.$eval('.pair figure:nth-child(2) img', (i) => [(i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight]), [512, 256]);
    await shot('histogram');
  });

  it('logged no page errors, blocked nothing, and asked nothing of any other host', () => {
    // The one failed load is the text file's 415, which Chromium reports on the console.
    assert.deepEqual(problems, ['console: Failed to load resource: the server responded with a status of 415 (Unsupported Media Type)']);
  });

  it('serves /docs that renders the document offline', async () => {
    const docs = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      const outside: string[] = [];
      docs.on('request', (r) => {
        if (!/^(http:\/\/127\.0\.0\.1:\d+\/|data:|blob:)/.test(r.url())) outside.push(r.url());
      });
      await docs.goto(`${base}/docs`);
      await docs.waitForSelector('.opblock-summary-path', { timeout: 30_000 });
      const paths = await docs.$$eval('.opblock-summary-path', (els) => [...new Set(els.map((e) => e.getAttribute('data-path')))]);
      for (const r of svc.resources) assert.ok(paths.includes(`/${r.name}`), `/docs shows /${r.name}`);
      await docs.click('#operations-resources-canny .opblock-summary');
      await docs.waitForSelector('#operations-resources-canny .parameters');
      await docs.locator('#operations-resources-canny').screenshot({ path: path.join(ARTIFACTS, 'docs-canny.png') });
      assert.deepEqual(outside, []);
    } finally {
      await docs.close();
    }
  });
});
