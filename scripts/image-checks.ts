/**
 * Checks a built cvserve image from outside, as a user runs it (scripts/image-test.sh builds it and
 * calls this): podman run --read-only --tmpfs /tmp, the models mounted read-only, a volume on /data,
 * the port published on 127.0.0.1 only. Every route of the README's two route tables once (native
 * and DeepStack) with real expectations, the four ways to send an image, the face gallery surviving
 * a restart on the volume, /readyz, /metrics, the HEALTHCHECK, uid 1000, no write outside /tmp and
 * /data, and SIGTERM while requests are in flight. Prints one line per check; exits 1 if any failed.
 *
 *   node --import tsx scripts/image-checks.ts --image localhost/cvserve:test --models ../shared/models [--name N]
 *
 * It creates the container <name> and the volume <name>-data, and removes both when done.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { boxIoU, edgeIoU, grayPixels } from '../tests/helpers/images.js';
import { image, REPO_ROOT, reference } from '../tests/helpers/paths.js';
import { usPlateIn } from '../tests/helpers/plates.js';

const { values: args } = parseArgs({
  options: {
    image: { type: 'string' },
    models: { type: 'string' },
    name: { type: 'string', default: `cvserve-checks-${process.pid}` },
    'ready-timeout-ms': { type: 'string', default: '240000' },
  },
});
if (!args.image || !args.models) {
  console.error('usage: image-checks.ts --image IMAGE --models DIR [--name NAME]');
  process.exit(2);
}
const IMAGE = args.image;
const MODELS = path.resolve(args.models);
const NAME = args.name!;
const VOLUME = `${NAME}-data`;
const READY_TIMEOUT_MS = Number(args['ready-timeout-ms']);
/** Generous: the bound is checked on the server's own clock (its log), the margin is for a busy machine. */
const SHUTDOWN_TIMEOUT_MS = 30_000;
/** The container's own address for ?url= (its loopback: the sample photos it serves itself). */
const INSIDE = 'http://127.0.0.1:8080';

const photo = (name: string) => readFileSync(image(name));
const sample = (name: string) => readFileSync(path.join(REPO_ROOT, 'data', name));
const nativeRef = JSON.parse(readFileSync(reference('opencv-native.json'), 'utf8')) as {
  images: Record<string, { faces: number[][]; catfaces: number[][] }>;
};

// ---- running podman -------------------------------------------------------------------------

function podman(argv: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): { code: number; out: string; err: string } {
  const r = spawnSync('podman', argv, { encoding: 'utf8', timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 });
  const result = { code: r.status ?? -1, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
  if (!opts.allowFail && result.code !== 0) throw new Error(`podman ${argv.slice(0, 2).join(' ')} exited ${result.code}: ${result.err.slice(-400)}`);
  return result;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let base = '';

async function waitReady(): Promise<number> {
  const start = Date.now();
  let last = '';
  for (;;) {
    const res = await fetch(`${base}/readyz`).catch(() => undefined);
    if (res?.status === 200) return Date.now() - start;
    if (res) last = `${res.status} ${(await res.text()).slice(0, 300)}`;
    const state = podman(['inspect', NAME, '--format', '{{.State.Status}}'], { allowFail: true }).out;
    if (state !== 'running') {
      const code = podman(['inspect', NAME, '--format', '{{.State.ExitCode}}'], { allowFail: true }).out;
      const logs = podman(['logs', '--tail', '5', NAME], { allowFail: true });
      // The server logs JSON lines on stdout: the last ones say why it stopped.
      throw new Error(`container ${state} (exit code ${code}): ${logs.out.split('\n').slice(-3).join(' | ').slice(0, 1200)}`);
    }
    if (Date.now() - start > READY_TIMEOUT_MS) throw new Error(`not ready after ${READY_TIMEOUT_MS} ms: /readyz ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

// ---- the report ------------------------------------------------------------------------------

let failures = 0;
const covered = new Set<string>();

async function check(name: string, fn: () => Promise<string | void> | string | void): Promise<void> {
  try {
    const detail = await fn();
    console.log(`ok   ${name}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    failures++;
    console.log(`FAIL ${name}: ${(err as Error).message.split('\n').slice(0, 6).join(' | ').slice(0, 600)}`);
  }
}

// ---- HTTP, the four ways ---------------------------------------------------------------------

type Answer = { status: number; type: string; json: any; bytes: Buffer };

async function send(method: 'GET' | 'POST', route: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Answer> {
  covered.add(route.split('?')[0]!.toLowerCase());
  const res = await fetch(`${base}${route}`, { method, body: init.body, headers: init.headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!;
  const json = type === 'application/json' ? JSON.parse(bytes.toString('utf8')) : undefined;
  return { status: res.status, type, json, bytes };
}

function multipart(fields: Record<string, Buffer | string>): FormData {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'string') form.append(key, value);
    else form.append(key, new Blob([new Uint8Array(value)], { type: 'image/jpeg' }), `${key}.jpg`);
  }
  return form;
}

const postForm = (route: string, fields: Record<string, Buffer | string>) => send('POST', route, { body: multipart(fields) });
const postRaw = (route: string, bytes: Buffer, type: string) => send('POST', route, { body: new Uint8Array(bytes), headers: { 'Content-Type': type } });
const postJson = (route: string, body: object) => send('POST', route, { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });

function ok(a: Answer, what: string): void {
  assert.equal(a.status, 200, `${what}: ${a.status} ${a.json ? JSON.stringify(a.json).slice(0, 300) : a.type}`);
}

/** Every expected box has an answered box with IoU ≥ min, and there are as many of each. */
function sameBoxes(got: number[][], want: number[][], min = 0.9): void {
  assert.equal(got.length, want.length, `${got.length} boxes, expected ${want.length}`);
  const left = [...got];
  for (const w of want) {
    const i = left.findIndex((g) => boxIoU(g, w) >= min);
    assert.ok(i >= 0, `no box like ${JSON.stringify(w)} in ${JSON.stringify(got)}`);
    left.splice(i, 1);
  }
}

const near = (value: number, want: number, tol: number, what: string) => assert.ok(Math.abs(value - want) <= tol, `${what} ${value}, expected ${want}±${tol}`);

// ---- the README's route tables ---------------------------------------------------------------

/** The routes of the README's two route tables (the native one at the top, DeepStack's), lower case, `<id>` as in the table. */
function readmeRoutes(): string[] {
  const lines = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8').split('\n');
  const routes: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\| route \|/.test(lines[i]!)) continue;
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
      const cell = lines[i]!.split(/(?<!\\)\|/)[1] ?? '';
      let parent = '';
      for (const [, code] of cell.matchAll(/`([^`]+)`/g)) {
        const p = /(\/[\w/<>-]*)$/.exec(code!)?.[1];
        if (!p) continue;
        // "`POST /v1/vision/face/list`, `/delete`, `/match`": the short ones are siblings of the first.
        const full = p.split('/').length <= 2 && parent ? `${parent}${p}` : p;
        if (!parent) parent = full.slice(0, full.lastIndexOf('/'));
        routes.push(full.toLowerCase());
      }
    }
  }
  return routes;
}

// ---- the checks ------------------------------------------------------------------------------

async function startContainer(port: number): Promise<void> {
  podman([
    'run', '-d', '--name', NAME,
    '--read-only', '--tmpfs', '/tmp',
    '-v', `${MODELS}:/models:ro`,
    '-v', `${VOLUME}:/data`,
    '-e', 'CVSERVE_MODELS_FETCH=off',
    // ?url= below fetches the sample photos the container serves itself, on its own loopback.
    '-e', 'CVSERVE_ALLOW_PRIVATE_NETWORKS=true',
    '-e', `CVSERVE_SHUTDOWN_TIMEOUT_MS=${SHUTDOWN_TIMEOUT_MS}`,
    '-p', `127.0.0.1:${port}:8080`,
    IMAGE,
  ]);
}

async function main(): Promise<void> {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  podman(['rm', '-f', '-t', '0', NAME], { allowFail: true });
  podman(['volume', 'rm', '-f', VOLUME], { allowFail: true });
  podman(['volume', 'create', VOLUME]);
  try {
    await checks(port);
  } finally {
    podman(['rm', '-f', '-t', '0', NAME], { allowFail: true });
    podman(['volume', 'rm', '-f', VOLUME], { allowFail: true });
  }
  const routes = readmeRoutes();
  console.log(failures ? `${failures} check(s) FAILED` : `all checks passed (${routes.length} README routes)`);
  process.exitCode = failures ? 1 : 0;
}

async function checks(port: number): Promise<void> {
  await check('image config: user 1000:1000, port 8080, SIGTERM, HEALTHCHECK on /healthz, CMD node', () => {
    const cfg = JSON.parse(podman(['image', 'inspect', IMAGE, '--format', '{{json .Config}}']).out) as {
      User: string; ExposedPorts: Record<string, unknown>; StopSignal: string; Cmd: string[];
    };
    const health = JSON.parse(podman(['image', 'inspect', IMAGE, '--format', '{{json .HealthCheck}}']).out) as { Test: string[] } | null;
    assert.equal(cfg.User, '1000:1000');
    assert.deepEqual(Object.keys(cfg.ExposedPorts), ['8080/tcp']);
    assert.equal(cfg.StopSignal, 'SIGTERM');
    assert.deepEqual(cfg.Cmd, ['node', 'dist/src/server.js']);
    assert.ok(health?.Test.join(' ').includes('/healthz'), 'HEALTHCHECK kept (docker format)');
  });

  await check('image contents: production dependencies only, compiled code only, the build-time models sha256-checked, the JPEG addon loads', () => {
    const r = podman(['run', '--rm', '--read-only', '--tmpfs', '/tmp', '--network', 'none', '--no-healthcheck', IMAGE, 'sh', '-c', [
      'for dev in typescript tsx supertest dockerfile-ast; do test ! -e node_modules/$dev || echo "dev dependency $dev"; done',
      'test ! -e src || echo "TypeScript sources"',
      'test "$(stat -c %u "$CVSERVE_MODELS_DIR")" = 1000 || echo "$CVSERVE_MODELS_DIR not uid 1000"',
      'node dist/src/cli.js models --check >/tmp/check.log 2>&1 || { echo "models --check failed"; tail -5 /tmp/check.log; }',
      // The JPEG decoder's addon loads with the libjpeg beside it (else sharp decodes, at twice the CPU).
      'node --input-type=module -e "const m = await import(\'/app/dist/src/image/jpeg-decoder.js\'); const p = m.jpegAddonProblem(); if (p) console.log(\'jpeg addon: \' + p)"',
    ].join('; ')], { allowFail: true });
    assert.equal(`${r.out}${r.err}`, '');
    assert.equal(r.code, 0);
  });

  await startContainer(port);
  let readyMs = 0;
  await check('starts read-only with the models mounted read-only, and turns ready', async () => {
    readyMs = await waitReady();
    const ready = await send('GET', '/readyz');
    assert.deepEqual(ready.json, { status: 'ready' });
    return `ready ${(readyMs / 1000).toFixed(1)} s after podman run returned`;
  });
  // Not ready but serving: check the routes anyway, to name the ones that fail.
  if (!readyMs && !(await fetch(`${base}/healthz`).then((r) => r.ok, () => false))) return;

  await check('runs as uid 1000, PID 1 is node dist/src/server.js', () => {
    assert.equal(podman(['exec', NAME, 'id', '-u']).out, '1000');
    assert.equal(podman(['exec', NAME, 'cat', '/proc/1/cmdline']).out.replaceAll('\0', ' ').trim(), 'node dist/src/server.js');
    assert.equal(podman(['exec', NAME, 'sh', '-c', 'stat -c %u /proc/1']).out, '1000');
  });

  await check('GET /ping, /healthz', async () => {
    assert.deepEqual((await send('GET', '/ping')).json, { success: true });
    assert.equal((await send('GET', '/healthz')).status, 200);
  });

  await check('GET / lists the native routes of the README table', async () => {
    const answer = await send('GET', '/', { headers: { Accept: 'application/json' } });
    const native = readmeRoutes().filter((r) => !r.startsWith('/v1/'));
    for (const r of native) assert.ok(answer.json.routes.includes(r), `${r} in GET /`);
  });

  // The four ways to send an image, one per route.
  await check('/canny, raw image/jpeg body: PNG edge map = native OpenCV (edge IoU ≥ 0.99)', async () => {
    const a = await postRaw('/canny?format=png', photo('test_face_processing.jpg'), 'image/jpeg');
    ok(a, '/canny');
    assert.equal(a.type, 'image/png');
    const [ours, ref] = await Promise.all([grayPixels(a.bytes), grayPixels(reference('canny_test_face_processing.png'))]);
    assert.deepEqual([ours.width, ours.height], [640, 482]);
    const iou = edgeIoU(ours.data, ref.data);
    assert.ok(iou >= 0.99, `edge IoU ${iou}`);
    return `edge IoU ${iou.toFixed(4)}`;
  });

  await check('/detect, multipart: the 17 faces of native OpenCV (IoU ≥ 0.9)', async () => {
    const a = await postForm('/detect', { image: photo('test_face_processing.jpg') });
    ok(a, '/detect');
    sameBoxes(a.json.result.map((r: { box: number[] }) => r.box), nativeRef.images['test_face_processing.jpg']!.faces);
  });

  await check('/catfacedetection, JSON imageBase64: the cat face of native OpenCV', async () => {
    const a = await postJson('/catfacedetection', { imageBase64: photo('cat_small.jpg').toString('base64') });
    ok(a, '/catfacedetection');
    sameBoxes(a.json.result.map((r: { box: number[] }) => r.box), nativeRef.images['cat_small.jpg']!.catfaces);
    return JSON.stringify(a.json.result);
  });

  await check('/catdetection, GET ?url= (a sample photo the container serves itself): cup 0.891, dining table', async () => {
    const a = await send('GET', `/catdetection?labels=all&url=${encodeURIComponent(`${INSIDE}/playground/samples/coffee.jpg`)}`);
    ok(a, '/catdetection');
    const result = a.json.result as { box: number[]; label: string; score: number }[];
    assert.deepEqual(result.map((r) => r.label), ['cup', 'dining table']);
    assert.ok(boxIoU(result[0]!.box, [162, 16, 422, 299]) >= 0.9, JSON.stringify(result[0]));
    near(result[0]!.score, 0.891, 0.01, 'cup score');
  });

  await check('/predict, JSON imageBase64 with top=3: sports car, minivan, convertible', async () => {
    const a = await postJson('/predict', { top: 3, imageBase64: photo('car.jpg').toString('base64') });
    ok(a, '/predict');
    assert.deepEqual(a.json.predictions.map((p: { label: string }) => p.label), ['sports car', 'minivan', 'convertible']);
  });

  const small = await sharp(photo('test_face_processing.jpg')).resize(160, 120).png().toBuffer();
  const smallJpeg = await sharp(small).jpeg().toBuffer();
  await check('/upscale, raw image/png: PNG at exactly 3x (480x360)', async () => {
    const a = await postRaw('/upscale', small, 'image/png');
    ok(a, '/upscale');
    const meta = await sharp(a.bytes).metadata();
    assert.deepEqual([a.type, meta.format, meta.width, meta.height], ['image/png', 'png', 480, 360]);
  });

  await check('/facedetection, multipart: the astronaut, score 0.97', async () => {
    const a = await postForm('/facedetection', { image: sample('astronaut.jpg') });
    ok(a, '/facedetection');
    assert.equal(a.json.result.length, 1);
    assert.ok(boxIoU(a.json.result[0].box, [181, 71, 265, 174]) >= 0.9, JSON.stringify(a.json.result[0]));
    near(a.json.result[0].score, 0.97, 0.01, 'score');
  });

  await check('/facerecognition before any register: "unknown"', async () => {
    const a = await postForm('/facerecognition', { image: sample('astronaut.jpg') });
    ok(a, '/facerecognition');
    assert.deepEqual(a.json.result.map((r: { userid: string }) => r.userid), ['unknown']);
  });

  // DeepStack / CodeProject.AI dialect.
  await check('/v1/vision/detection: cat 0.759 and bed', async () => {
    const a = await postForm('/v1/vision/detection', { image: photo('cat_small.jpg') });
    ok(a, 'detection');
    assert.deepEqual(a.json.predictions.map((p: { label: string }) => p.label), ['cat', 'bed']);
    const cat = a.json.predictions[0];
    assert.ok(boxIoU([cat.x_min, cat.y_min, cat.x_max, cat.y_max], [261, 372, 912, 1275]) >= 0.9, JSON.stringify(cat));
    near(cat.confidence, 0.759, 0.01, 'cat confidence');
  });

  let customId = '';
  await check('/v1/vision/custom/list (GET and POST): the manifest detectors', async () => {
    const post = await send('POST', '/v1/vision/custom/list');
    const get = await send('GET', '/v1/vision/custom/list');
    ok(post, 'custom/list');
    assert.ok(post.json.models.includes('yolox-nano'), JSON.stringify(post.json));
    assert.deepEqual(get.json.models, post.json.models);
    customId = 'yolox-nano';
  });

  await check('/v1/vision/custom/<id>: cup and dining table', async () => {
    const a = await postForm(`/v1/vision/custom/${customId}`, { image: sample('coffee.jpg') });
    covered.add('/v1/vision/custom/<id>');
    ok(a, 'custom');
    assert.deepEqual(a.json.predictions.map((p: { label: string }) => p.label), ['cup', 'dining table']);
  });

  await check('/v1/vision/face: one face at 0.97', async () => {
    const a = await postForm('/v1/vision/face', { image: sample('astronaut.jpg') });
    ok(a, 'face');
    assert.equal(a.json.count, 1);
    const f = a.json.predictions[0];
    assert.ok(boxIoU([f.x_min, f.y_min, f.x_max, f.y_max], [181, 71, 265, 174]) >= 0.9, JSON.stringify(f));
  });

  await check('/v1/vision/face/register: the astronaut added, the coffee photo has no face', async () => {
    const a = await postForm('/v1/vision/face/register', { userid: 'eileen', image: sample('astronaut.jpg'), image1: sample('coffee.jpg') });
    ok(a, 'register');
    assert.equal(a.json.added, 1);
    assert.deepEqual(a.json.images.map((i: { status: string }) => i.status), ['added', 'no face']);
  });

  await check('/v1/vision/face/match: the same photo twice, similarity 1', async () => {
    const a = await postForm('/v1/vision/face/match', { image1: sample('astronaut.jpg'), image2: sample('astronaut.jpg') });
    ok(a, 'match');
    near(a.json.similarity, 1, 0.01, 'similarity');
  });

  await check('/v1/vision/scene: sports car', async () => {
    const a = await postForm('/v1/vision/scene', { image: photo('car.jpg') });
    ok(a, 'scene');
    assert.equal(a.json.label, 'sports car');
  });

  // Plates and text (PP-OCRv4 from the npm package inside the image): a US plate rendered here, placed into a sample photo.
  const platePhoto = await usPlateIn(sample('coffee.jpg'));
  await check('/alpr, multipart: plate 7ABC123 (region us)', async () => {
    const a = await postForm('/alpr?region=us', { image: platePhoto });
    ok(a, '/alpr');
    assert.equal(a.json.result[0]?.plate, '7ABC123', JSON.stringify(a.json.result.map((p: { plate: string }) => p.plate)));
  });
  await check('/ocr, multipart: the plate line and the state', async () => {
    const a = await postForm('/ocr', { image: platePhoto });
    ok(a, '/ocr');
    const texts = a.json.result.map((l: { text: string }) => l.text);
    assert.ok(texts.includes('7ABC123') && texts.includes('California'), JSON.stringify(texts));
  });
  for (const route of ['/v1/vision/alpr', '/v1/image/alpr']) {
    await check(`${route} (CodeProject.AI, field "upload"): Plate: 7ABC123`, async () => {
      const a = await postForm(route, { upload: platePhoto, region: 'us' });
      ok(a, route);
      assert.equal(a.json.predictions[0]?.label, 'Plate: 7ABC123', JSON.stringify(a.json).slice(0, 300));
    });
  }
  for (const route of ['/v1/vision/ocr', '/v1/image/ocr']) {
    await check(`${route} (CodeProject.AI, field "upload"): the plate's text`, async () => {
      const a = await postForm(route, { upload: platePhoto });
      ok(a, route);
      assert.ok(a.json.predictions.some((p: { label: string }) => p.label === '7ABC123'), JSON.stringify(a.json).slice(0, 300));
    });
  }

  await check('/v1/vision/enhance: JPEG at 3x (480x360)', async () => {
    const a = await postForm('/v1/vision/enhance', { image: smallJpeg });
    ok(a, 'enhance');
    const meta = await sharp(Buffer.from(a.json.base64, 'base64')).metadata();
    assert.deepEqual([a.json.width, a.json.height, meta.format, meta.width, meta.height], [480, 360, 'jpeg', 480, 360]);
  });

  await check('/v1/image/superresolution: PNG at 3x (480x360)', async () => {
    const a = await postForm('/v1/image/superresolution', { image: smallJpeg });
    ok(a, 'superresolution');
    const meta = await sharp(Buffer.from(a.json.imageBase64, 'base64')).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 480, 360]);
  });

  await check('/v1/status/ping and /v1/status/updateavailable (GET and POST)', async () => {
    assert.deepEqual((await send('GET', '/v1/status/ping')).json, { success: true });
    for (const method of ['GET', 'POST'] as const) {
      const a = await send(method, '/v1/status/updateavailable');
      ok(a, `updateavailable ${method}`);
      assert.equal(a.json.updateAvailable, false);
    }
  });

  await check('the face gallery is on the /data volume (faces.sqlite)', () => {
    const mountpoint = podman(['volume', 'inspect', VOLUME, '--format', '{{.Mountpoint}}']).out;
    const files = spawnSync('ls', [mountpoint], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    assert.ok(files.includes('faces.sqlite'), `volume holds ${files.join(', ')}`);
    return `volume: ${files.join(', ')}`;
  });

  // Restart: the same container, stopped (SIGTERM) and started again.
  await check('podman stop, podman start: exit 0, ready again; the gallery is still there', async () => {
    podman(['stop', '-t', String(SHUTDOWN_TIMEOUT_MS / 1000 + 20), NAME], { timeoutMs: SHUTDOWN_TIMEOUT_MS + 60_000 });
    const code = podman(['inspect', NAME, '--format', '{{.State.ExitCode}}']).out;
    assert.equal(code, '0', `exit code ${code}`);
    podman(['start', NAME]);
    const again = await waitReady();
    const list = await send('POST', '/v1/vision/face/list');
    ok(list, 'list');
    assert.deepEqual(list.json.faces, ['eileen']);
    assert.deepEqual(list.json.users, [{ userid: 'eileen', photos: 1 }]);
    return `ready ${(again / 1000).toFixed(1)} s after the restart`;
  });

  await check('/v1/vision/face/recognize after the restart: eileen', async () => {
    const a = await postForm('/v1/vision/face/recognize', { image: sample('astronaut.jpg') });
    ok(a, 'recognize');
    assert.deepEqual(a.json.predictions.map((p: { userid: string }) => p.userid), ['eileen']);
    assert.ok(a.json.predictions[0].confidence >= 0.9, String(a.json.predictions[0].confidence));
  });

  await check('/facerecognition after the restart: eileen', async () => {
    const a = await postForm('/facerecognition', { image: sample('astronaut.jpg') });
    ok(a, '/facerecognition');
    assert.deepEqual(a.json.result.map((r: { userid: string }) => r.userid), ['eileen']);
  });

  await check('/metrics: the requests since the restart, the gallery size', async () => {
    const a = await send('GET', '/metrics');
    ok(a, '/metrics');
    const text = a.bytes.toString('utf8');
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}()[\]|.+*?^$\\]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(value('cvserve_http_requests_total{method="POST",route="/facerecognition",status="200"}'), 1);
    assert.equal(value('cvserve_http_requests_total{method="POST",route="/v1/vision/face/list",status="200"}'), 1);
    assert.equal(value('cvserve_face_gallery_size{kind="users"}'), 1);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
  });

  await check('/v1/vision/face/delete: eileen deleted, the list is empty', async () => {
    const a = await postForm('/v1/vision/face/delete', { userid: 'eileen' });
    ok(a, 'delete');
    assert.equal(a.json.deleted, 1);
    assert.deepEqual((await send('POST', '/v1/vision/face/list')).json.faces, []);
  });

  await check('podman healthcheck run: healthy', () => {
    const r = podman(['healthcheck', 'run', NAME], { allowFail: true });
    assert.equal(r.code, 0, `${r.out} ${r.err}`);
    return r.out || 'exit 0';
  });

  await check('no write outside /tmp and /data: podman diff is empty, no EROFS in the log', () => {
    // podman itself bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf: "C /etc".
    const diff = podman(['diff', NAME]).out.split('\n').filter(Boolean);
    const podmans = new Set(['C /etc', 'A /etc/hosts', 'A /etc/hostname', 'A /etc/resolv.conf', 'C /etc/hosts', 'C /etc/hostname', 'C /etc/resolv.conf', 'A /run/.containerenv']);
    assert.deepEqual(diff.filter((d) => !/^[ACD] \/(tmp|data)(\/|$)/.test(d) && !podmans.has(d)), []);
    const logs = podman(['logs', NAME]);
    assert.doesNotMatch(`${logs.out}\n${logs.err}`, /EROFS|read-only file system/i);
    const tmp = podman(['exec', NAME, 'sh', '-c', 'ls -A /tmp | wc -l']).out;
    return `podman diff: ${diff.join(', ') || 'nothing'}; /tmp holds ${tmp} entries`;
  });

  await check('every route of the README route tables was called', () => {
    const missing = readmeRoutes().filter((r) => !covered.has(r));
    assert.deepEqual(missing, []);
    return `${readmeRoutes().length} routes`;
  });

  await check(`SIGTERM with requests in flight: they finish, exit 0 within CVSERVE_SHUTDOWN_TIMEOUT_MS (${SHUTDOWN_TIMEOUT_MS} ms)`, async () => {
    // Two requests whose bodies are held back: the server has taken them (it answered
    // "100 Continue") when the signal arrives, and they are sent only once it is draining.
    const held = [
      heldRequest(port, '/detect', sample('astronaut.jpg')),
      heldRequest(port, '/v1/vision/detection', sample('coffee.jpg'), true),
    ];
    await Promise.all(held.map((h) => h.accepted));
    const signalled = Date.now();
    podman(['kill', '--signal', 'TERM', NAME]);
    await waitForLog('shutting down', 10_000);
    for (const h of held) h.sendBody();
    const [detect, detection] = await Promise.all(held.map((h) => h.answer));
    const exit = podman(['wait', NAME], { timeoutMs: SHUTDOWN_TIMEOUT_MS + 30_000 }).out;
    const stoppedMs = Date.now() - signalled;
    assert.equal(detect!.status, 200, `held /detect ${detect!.status} ${detect!.body}`);
    assert.deepEqual(JSON.parse(detect!.body), { status: 'ok', result: [{ box: [176, 67, 273, 164] }] });
    assert.equal(detection!.status, 200, `held detection ${detection!.status}`);
    assert.deepEqual(JSON.parse(detection!.body).predictions.map((p: { label: string }) => p.label), ['cup', 'dining table']);
    assert.equal(exit, '0', `exit code ${exit}`);
    assert.ok(stoppedMs < SHUTDOWN_TIMEOUT_MS, `stopped ${stoppedMs} ms after the signal`);
    const logs = podman(['logs', NAME]);
    const lines = `${logs.out}\n${logs.err}`.split('\n');
    const at = (msg: string) => {
      const line = lines.filter((l) => l.includes(msg)).at(-1);
      assert.ok(line, `"${msg}" logged`);
      return (JSON.parse(line) as { time: number }).time;
    };
    const drainMs = at('shutdown complete') - at('shutting down');
    assert.ok(drainMs >= 0 && drainMs < SHUTDOWN_TIMEOUT_MS, `drain took ${drainMs} ms`);
    return `both answered; the server drained in ${drainMs} ms by its log, exit 0 ${stoppedMs} ms after podman kill`;
  });
}

async function waitForLog(text: string, timeoutMs: number): Promise<void> {
  const start = Date.now();
  for (;;) {
    const logs = podman(['logs', NAME], { allowFail: true });
    if (`${logs.out}\n${logs.err}`.includes(text)) return;
    if (Date.now() - start > timeoutMs) throw new Error(`no "${text}" in the log after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A POST with `Expect: 100-continue` whose body goes out only when asked. */
function heldRequest(port: number, route: string, body: Buffer, multipartForm = false) {
  let sendBody = () => {};
  let payload = body;
  const headers: Record<string, string | number> = { Expect: '100-continue' };
  if (multipartForm) {
    const boundary = 'cvserve-image-checks';
    payload = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="image.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
      body,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    headers['Content-Type'] = `multipart/form-data; boundary=${boundary}`;
  } else headers['Content-Type'] = 'image/jpeg';
  headers['Content-Length'] = payload.length;
  covered.add(route);
  const req = http.request({ host: '127.0.0.1', port, path: route, method: 'POST', headers });
  const accepted = new Promise<void>((resolve, reject) => {
    req.once('continue', () => resolve());
    req.once('error', reject);
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.once('error', reject);
  });
  sendBody = () => req.end(payload);
  req.flushHeaders();
  return { accepted, answer, sendBody: () => sendBody() };
}

await main();
