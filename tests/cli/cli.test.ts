import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { startServerProcess } from '../../scripts/lib/server-process.js';
import { createTestApp } from '../helpers/app.js';
import { guardedEnv } from '../helpers/net.js';
import { image, MODELS_DIR, REPO_ROOT } from '../helpers/paths.js';
import { localServer } from '../helpers/photo-server.js';

const PLUGINS_DIR = path.join(REPO_ROOT, 'examples/plugins');

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the CLI from source as a separate process, as a user would (node + tsx instead of the built file). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: REPO_ROOT,
      env: guardedEnv({
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        CVSERVE_MODELS_DIR: MODELS_DIR,
        CVSERVE_MODELS_FETCH: 'off',
        CVSERVE_PLUGINS_DIR: PLUGINS_DIR,
        CVSERVE_OPENCV_WORKERS: '1',
        CVSERVE_ONNX_WORKERS: '1',
        CVSERVE_ONNX_THREADS: '2',
        ...env,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += String(c)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

/** The raw bytes of an HTTP answer, whatever its type. */
function rawBody(test: request.Test): Promise<request.Response> {
  return test.buffer(true).parse((res, cb) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => cb(null, Buffer.concat(chunks)));
  });
}

describe('cvserve run: the route without HTTP', () => {
  let svc: CvServe;
  let tmp: string;

  before(async () => {
    svc = await createTestApp({ pluginsDir: PLUGINS_DIR });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'cvserve-cli-'));
  });
  after(async () => {
    await svc.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const jsonCases: { route: string; file: string; params: Record<string, string> }[] = [
    { route: 'detect', file: 'test_face_processing.jpg', params: { minNeighbors: '4', scaleFactor: '1.15' } },
    { route: 'catfacedetection', file: 'cat_small.jpg', params: {} },
    { route: 'predict', file: 'cat_small.jpg', params: { top: '3' } },
    { route: 'catdetection', file: 'cat_small.jpg', params: { labels: 'all', threshold: '0.25' } },
    { route: 'histogram', file: 'car.jpg', params: { format: 'json', bins: '32' } },
  ];
  for (const { route, file, params } of jsonCases) {
    it(`prints byte-identical JSON to POST /${route} (${file}, ${JSON.stringify(params)})`, async () => {
      const bytes = readFileSync(image(file));
      let req = request(svc.app).post(`/${route}`).attach('image', bytes, file);
      for (const [k, v] of Object.entries(params)) req = req.field(k, v);
      const http = await rawBody(req);
      assert.equal(http.status, 200, String(http.body));
      assert.equal(http.type, 'application/json');
      const run = await cli(['run', route, image(file), ...Object.entries(params).flatMap(([k, v]) => [`--${k}`, v])]);
      assert.equal(run.code, 0, run.stderr);
      assert.ok((http.body as Buffer).length > 20);
      assert.ok(run.stdout.equals(http.body as Buffer), `CLI: ${run.stdout.toString().slice(0, 200)}\nHTTP: ${String(http.body).slice(0, 200)}`);
    });
  }

  it('writes the same image bytes as the route (--out), and the same {imageBase64, format} with --json', async () => {
    const bytes = readFileSync(image('cat_small.jpg'));
    const http = await rawBody(request(svc.app).post('/canny?threshold1=60&format=png').set('Content-Type', 'image/jpeg').send(bytes));
    assert.equal(http.type, 'image/png');
    const out = path.join(tmp, 'edges.png');
    const run = await cli(['run', 'canny', image('cat_small.jpg'), '--threshold1', '60', '--format=png', '--out', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.length, 0);
    assert.match(run.stderr, /wrote .*edges\.png \(png, \d+ bytes\)/);
    assert.ok(readFileSync(out).equals(http.body as Buffer), 'same PNG bytes');

    const httpJson = await rawBody(request(svc.app).post('/canny').set('Accept', 'application/json').attach('image', bytes, 'cat.jpg'));
    const runJson = await cli(['run', 'canny', image('cat_small.jpg'), '--json']);
    assert.equal(runJson.code, 0, runJson.stderr);
    assert.ok(runJson.stdout.equals(httpJson.body as Buffer), 'same {imageBase64, format} JSON');
    assert.equal(JSON.parse(runJson.stdout.toString()).format, 'jpeg');
  });

  it('draws detection boxes for --accept image/png like Accept: image/png over HTTP', async () => {
    const bytes = readFileSync(image('test_face_processing.jpg'));
    const http = await rawBody(request(svc.app).post('/detect').set('Accept', 'image/png').attach('image', bytes, 'faces.jpg'));
    assert.equal(http.type, 'image/png');
    const run = await cli(['run', 'detect', image('test_face_processing.jpg'), '--accept', 'image/png']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.equals(http.body as Buffer), 'piped stdout carries the same PNG');
  });

  it("fails like the route: the same error JSON on stdout, the message on stderr, exit status 1", async () => {
    const bytes = readFileSync(image('cat_small.jpg'));
    const http = await rawBody(request(svc.app).post('/canny?threshold1=-5').set('Content-Type', 'image/jpeg').send(bytes));
    assert.equal(http.status, 400);
    const run = await cli(['run', 'canny', image('cat_small.jpg'), '--threshold1', '-5']);
    assert.equal(run.code, 1);
    assert.ok(run.stdout.equals(http.body as Buffer), run.stdout.toString());
    assert.equal(run.stderr, 'cvserve run: 400 BAD_PARAMETER: Invalid parameter: threshold1 must be ≥ 0\n');

    const text = path.join(tmp, 'notes.txt');
    await import('node:fs/promises').then((fs) => fs.writeFile(text, 'just some text, not an image\n'));
    const notImage = await cli(['run', 'detect', text]);
    assert.equal(notImage.code, 1);
    assert.equal(JSON.parse(notImage.stdout.toString()).code, 'UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('cvserve: usage, openapi, routes, models', () => {
  it('prints help and exits 2 on wrong usage', async () => {
    const cases: [string[], RegExp][] = [
      [[], /cvserve: no command given/],
      [['frobnicate'], /cvserve: unknown command: frobnicate/],
      [['run'], /run needs a route and an image \(file or URL\), got 0 arguments/],
      [['run', 'detect'], /run needs a route and an image \(file or URL\), got 1 argument\n/],
      [['run', 'detect', image('cat_small.jpg'), '--minNeighbors'], /--minNeighbors needs a value/],
      [['serve', 'now'], /serve takes no arguments/],
      [['openapi', 'extra'], /openapi takes no arguments/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.match(run.stderr, /Usage:\n  cvserve serve\n/, `${args.join(' ')} prints the usage`);
      assert.equal(run.stdout.length, 0);
    }
    // A command given rightly that cannot be done: the one useful line, no usage text.
    const cannot: [string[], RegExp][] = [
      [['run', 'nosuchroute', image('cat_small.jpg')], /no route \/nosuchroute; the routes are: canny, detect, .*histogram/],
      [['run', 'detect', path.join(REPO_ROOT, 'no-such-file.jpg')], /no such file: .*no-such-file\.jpg/],
    ];
    for (const [args, message] of cannot) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr.slice(0, 300)}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.equal(run.stderr.trim().split('\n').length, 1, `${args.join(' ')} prints one line`);
    }
    const help = await cli(['help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout.toString(), /^cvserve: computer vision over HTTP/);
    assert.match(help.stdout.toString(), /cvserve run <route> <file\|url> \[--<param> <value> \.\.\.\] \[--out <file>\]/);
    const badConfig = await cli(['openapi'], { CVSERVE_MAX_PIXELS: 'lots' });
    assert.equal(badConfig.code, 2);
    assert.match(badConfig.stderr, /CVSERVE_MAX_PIXELS="lots"/);
  });

  it('prints the same OpenAPI document as GET /openapi.json', async () => {
    const svc = await createTestApp({ pluginsDir: PLUGINS_DIR });
    try {
      const http = await request(svc.app).get('/openapi.json');
      const run = await cli(['openapi']);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(JSON.parse(run.stdout.toString()), http.body);
    } finally {
      await svc.close();
    }
  });

  it("lists the routes and a route's parameters", async () => {
    const list = await cli(['routes']);
    assert.equal(list.code, 0);
    assert.match(list.stdout.toString(), /^\/canny +Canny edge detection$/m);
    assert.match(list.stdout.toString(), /^\/histogram +Per-channel histogram \(chart or counts\)$/m);
    const detect = await cli(['routes', 'detect']);
    assert.match(detect.stdout.toString(), / {2}--scaleFactor <number> {2}\(default 1\.1, 1\.01\.\.2\)\n {6}How much the search window grows/);
  });

  it('models: verifies a complete directory (0), reports a missing one (1), fetches from a mirror', async () => {
    const ok = await cli(['models', '--check']);
    assert.equal(ok.code, 0, ok.stdout.toString());
    assert.match(ok.stdout.toString(), /: \d+ verified, 0 missing, 0 failed\n$/);

    const empty = mkdtempSync(path.join(os.tmpdir(), 'cvserve-models-'));
    // A mirror of the shared models directory; the CLI runs under the network guard, so had it
    // ignored --base-url, the real URL would have been refused (and the run would fail).
    const server = await localServer({
      fallback: (req, res) => {
        try {
          res.writeHead(200).end(readFileSync(path.join(MODELS_DIR, path.basename(decodeURIComponent(req.url ?? '')))));
        } catch {
          res.writeHead(404).end();
        }
      },
    });
    try {
      const missing = await cli(['models', '--check'], { CVSERVE_MODELS_DIR: empty });
      assert.equal(missing.code, 1);
      assert.match(missing.stdout.toString(), /^MISSING {2}haarcascade_frontalface_alt\.xml: not in /m);
      const fetched = await cli(['models', '--base-url', server.base, '--only', 'haarcascade_frontalface_alt.xml'], { CVSERVE_MODELS_DIR: empty });
      assert.equal(fetched.code, 0, fetched.stdout.toString() + fetched.stderr);
      assert.match(fetched.stdout.toString(), /^fetched {2}haarcascade_frontalface_alt\.xml \(676709 bytes, sha256 ok\) from http:\/\/127\.0\.0\.1:\d+\/haarcascade_frontalface_alt\.xml$/m);
      assert.deepEqual(server.seen.map((r) => r.url), ['/haarcascade_frontalface_alt.xml']);
      const sha = createHash('sha256').update(readFileSync(path.join(empty, 'haarcascade_frontalface_alt.xml'))).digest('hex');
      assert.equal(sha, '6281df13459cc218ff047d02b2ae3859b12ff14a93ffe8952f7b33fad7b9697b');
    } finally {
      await server.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('serve starts the HTTP service and stops cleanly on SIGTERM', async () => {
    const server = await startServerProcess({
      command: [process.execPath, '--import', 'tsx', 'src/cli.ts', 'serve'],
      cwd: REPO_ROOT,
      startTimeoutMs: 600_000,
      env: guardedEnv({ PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', CVSERVE_MODELS_DIR: MODELS_DIR, CVSERVE_MODELS_FETCH: 'off', CVSERVE_OPENCV_WORKERS: '1', CVSERVE_ONNX_THREADS: '1' }),
    });
    try {
      const ping = await fetch(`${server.url}/ping`);
      assert.deepEqual(await ping.json(), { success: true });
      assert.deepEqual(await server.stop('SIGTERM'), { code: 0, signal: null });
    } finally {
      await server.stop('SIGKILL');
    }
  });

  it('is an executable script (shebang) for the package bin', () => {
    assert.equal(readFileSync(path.join(REPO_ROOT, 'src/cli.ts'), 'utf8').split('\n')[0], '#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node');
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    assert.equal(pkg.bin.cvserve, 'dist/src/cli.js');
  });
});
