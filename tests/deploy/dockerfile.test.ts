/**
 * The image, proven without a Docker engine: the Dockerfile is parsed and linted, then its stages
 * are replayed in a temporary copy of the build context (npm ci with package.json's allowScripts, the TypeScript
 * build, production dependencies only, the build-time model fetch from a loopback mirror), and the
 * server is started from the last stage with its exact CMD, ENV and USER. It must answer /healthz,
 * /readyz and a real route, pass its own HEALTHCHECK, write nothing outside /tmp, and stop cleanly
 * on the STOPSIGNAL.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { startServerProcess, waitReady, type ServerProcess } from '../../scripts/lib/server-process.js';
import { SETTINGS } from '../../src/config.js';
import { edgeIoU, grayPixels } from '../helpers/images.js';
import { numericUser, replayDockerfile, type ReplayResult } from '../helpers/dockerfile-replay.js';
import { guardedEnv } from '../helpers/net.js';
import { image, MODELS_DIR, reference, REPO_ROOT } from '../helpers/paths.js';

// A CommonJS module whose types declare an ES default export: load it as what it is.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default;
const DOCKERFILE = path.join(REPO_ROOT, 'Dockerfile');
const BASE_IMAGE = 'node:20-bookworm-slim';
const text = readFileSync(DOCKERFILE, 'utf8');
const parsed = DockerfileParser.parse(text);
const ignore = dockerignore().add(readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n'));
const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'models/models.json'), 'utf8')) as {
  files: { file: string; sha256: string; bundled?: boolean }[];
};

/** The files Docker would send: the repository's files (as a clean clone has them) minus .dockerignore. */
function buildContextFiles(): string[] {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(listed.status, 0, listed.stderr);
  return listed.stdout
    .split('\0')
    .filter(Boolean)
    .filter((f) => !ignore.ignores(f) && existsSync(path.join(REPO_ROOT, f)));
}

function instructions(keyword: string) {
  return parsed.getInstructions().filter((i) => i.getKeyword() === keyword);
}

describe('Dockerfile (static checks)', () => {
  it('has no problems by the dockerfile-utils linter', () => {
    assert.deepEqual(validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
  });

  it(`builds every stage from ${BASE_IMAGE} and installs with onnxruntime-node's CUDA download skipped (allowScripts and ONNXRUNTIME_NODE_INSTALL=skip)`, () => {
    const defaults = Object.fromEntries(parsed.getInitialARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue()]));
    const froms = parsed.getFROMs();
    assert.ok(froms.length >= 2, 'multi-stage');
    const stageNames = froms.map((f) => f.getBuildStage());
    for (const from of froms) {
      const img = from.getImage()!.replace(/^\$\{(\w+)\}$/, (_m, name: string) => defaults[name] ?? '');
      assert.ok(img === BASE_IMAGE || stageNames.includes(img), `FROM ${from.getImage()} → ${img}`);
    }
    // In every stage that runs npm ci: package.json (its allowScripts) is copied before it, and the skip variable is set (npm 10 ignores allowScripts).
    let copied: string[] = [];
    let env: string[] = [];
    for (const i of parsed.getInstructions()) {
      if (i.getKeyword() === 'FROM') [copied, env] = [[], []];
      if (i.getKeyword() === 'COPY') copied.push(...i.getArguments().slice(0, -1).map((a) => a.getValue()));
      if (i.getKeyword() === 'ENV') env.push(i.getArgumentsContent() ?? '');
      if (i.getKeyword() === 'RUN' && /\bnpm ci\b/.test(i.getArgumentsContent() ?? '')) {
        assert.ok(copied.includes('package.json'), `package.json copied before: ${i.getArgumentsContent()}`);
        assert.ok(env.some((e) => /\bONNXRUNTIME_NODE_INSTALL=skip\b/.test(e)), `ONNXRUNTIME_NODE_INSTALL=skip before: ${i.getArgumentsContent()}`);
      }
    }
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    assert.equal(pkg.allowScripts?.['onnxruntime-node'], false, "package.json's allowScripts denies onnxruntime-node's install script");
  });

  it('runs as a numeric non-root user, exposes the default PORT, stops on SIGTERM, checks /healthz', () => {
    const user = numericUser(instructions('USER').at(-1)?.getArgumentsContent() ?? undefined);
    assert.ok(user && user.uid !== 0 && user.gid !== 0, 'USER uid:gid, numeric, not root');
    assert.deepEqual(
      instructions('EXPOSE').flatMap((i) => i.getArguments().map((a) => a.getValue())),
      [SETTINGS.port.default],
    );
    assert.equal(instructions('STOPSIGNAL').at(-1)?.getArgumentsContent(), 'SIGTERM');
    // src/run.ts is what acts on it.
    assert.match(readFileSync(path.join(REPO_ROOT, 'src/run.ts'), 'utf8'), /'SIGTERM'/);
    const hc = instructions('HEALTHCHECK');
    assert.equal(hc.length, 1);
    const url = /fetch\('http:\/\/127\.0\.0\.1:'\+\(process\.env\.PORT\|\|(\d+)\)\+'(\/[a-z]+)'/.exec(hc[0]!.getArgumentsContent() ?? '');
    assert.ok(url, 'HEALTHCHECK fetches http://127.0.0.1:$PORT/<path>');
    assert.deepEqual([url[1], url[2]], [SETTINGS.port.default, '/healthz']);
  });

  it('runs the compiled server with node itself (no npm, no shell), as `npm start` does', () => {
    const cmd = instructions('CMD');
    assert.equal(cmd.length, 1);
    assert.deepEqual(JSON.parse(cmd[0]!.getArgumentsContent()!), ['node', 'dist/src/server.js']);
    assert.equal(instructions('ENTRYPOINT').length, 0);
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // npm start runs the same command, with the allocator setting the image sets in its ENV (unless one is given).
    assert.equal(pkg.scripts.start, 'MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} node dist/src/server.js');
    assert.ok(parsed.getENVs().some((e) => e.getProperties().some((p) => p.getName() === 'MALLOC_ARENA_MAX' && p.getValue() === '2')), 'ENV MALLOC_ARENA_MAX=2');
  });

  it('sets only known settings and allocator variables in the image', () => {
    const known = new Set<string>([...Object.values(SETTINGS).map((s) => s.env), 'NODE_ENV', 'ONNXRUNTIME_NODE_INSTALL', 'MALLOC_ARENA_MAX', 'LD_PRELOAD']);
    const names = parsed.getENVs().flatMap((e) => e.getProperties().map((p) => p.getName()));
    assert.deepEqual(names.filter((n) => !known.has(n)), []);
  });

  it('.dockerignore keeps node_modules, dist, git data, tests and fetched models out, and lets in what the build copies', () => {
    for (const out of ['node_modules/sharp/package.json', 'dist/src/server.js', '.git/HEAD', 'tests/artifacts/x.png', 'tests/e2e/canny.test.ts', 'bench/results/r.json', 'models/yolox_nano.onnx', 'models/haarcascade_frontalface_alt.xml', '.env']) {
      assert.ok(ignore.ignores(out), `${out} is kept out`);
    }
    const context = new Set(buildContextFiles());
    for (const copy of parsed.getCOPYs().filter((c) => !c.getFromFlag())) {
      for (const src of copy.getArguments().slice(0, -1).map((a) => a.getValue())) {
        assert.ok([...context].some((f) => f === src || f.startsWith(`${src}/`)), `COPY ${src}: in the build context`);
      }
    }
    for (const f of manifest.files.filter((e) => e.bundled)) assert.ok(context.has(`models/${f.file}`), `bundled models/${f.file} in the context`);
    assert.ok(context.has('src/server.ts'));
  });
});

describe('Dockerfile replayed without Docker', { timeout: 900_000 }, () => {
  let work: string;
  let replay: ReplayResult;
  let server: ServerProcess;
  let mirror: http.Server;
  const mirrored: string[] = [];
  let before0: Map<string, string>;
  let tmpDir: string;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'cvserve-image-'));
    chmodSync(work, 0o755);
    // The build context.
    const context = path.join(work, 'context');
    for (const f of buildContextFiles()) {
      mkdirSync(path.dirname(path.join(context, f)), { recursive: true });
      copyFileSync(path.join(REPO_ROOT, f), path.join(context, f));
    }
    // A loopback mirror of the verified models, so the build-time fetch runs for real but offline.
    mirror = http.createServer((req, res) => {
      const name = decodeURIComponent((req.url ?? '/').slice(1));
      mirrored.push(name);
      const file = path.join(MODELS_DIR, path.basename(name));
      if (!existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Length': statSync(file).size }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));

    replay = await replayDockerfile({
      dockerfile: DOCKERFILE,
      context,
      workDir: path.join(work, 'stages'),
      baseImages: [BASE_IMAGE],
      buildArgs: { FETCH_MODELS: 'true', CVSERVE_MODELS_BASE_URL: `http://127.0.0.1:${(mirror.address() as AddressInfo).port}` },
      // The machine's node and npm stand in for the base image's; the npm cache makes npm ci quick.
      hostEnv: {
        PATH: process.env.PATH,
        HOME: os.homedir(),
        npm_config_prefer_offline: 'true',
        npm_config_update_notifier: 'false',
      },
      onRun: (stage, command) => console.log(`# replay [${stage}] RUN ${command.replace(/\s+/g, ' ')}`),
    });

    const final = replay.final;
    tmpDir = replay.hostPath(final, '/tmp');
    mkdirSync(tmpDir, { recursive: true, mode: 0o1777 });
    chmodSync(tmpDir, 0o1777);
    before0 = snapshot(final.root, tmpDir);
    const user = numericUser(final.user)!;
    const asRoot = process.getuid?.() === 0;
    server = await startServerProcess({
      command: final.cmd!,
      cwd: replay.hostPath(final, final.workdir),
      // The image's ENV exactly, plus only what a loopback test must change: the address.
      // (And the test network guard, so the started image cannot leave the machine either.)
      env: guardedEnv({ ...replay.mappedEnv(final), PATH: process.env.PATH, TMPDIR: tmpDir, HOST: '127.0.0.1', PORT: '0' }),
      ...(asRoot ? { uid: user.uid, gid: user.gid } : {}),
      startTimeoutMs: 600_000,
    });
  });

  after(async () => {
    await server?.stop('SIGKILL');
    await new Promise((resolve) => mirror?.close(resolve));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installed only production dependencies in the image, with the compiled server', () => {
    const app = replay.hostPath(replay.final, '/app');
    assert.ok(existsSync(path.join(app, 'dist/src/server.js')));
    assert.ok(existsSync(path.join(app, 'node_modules/sharp/package.json')));
    assert.ok(existsSync(path.join(app, 'node_modules/onnxruntime-node/package.json')));
    for (const dev of ['typescript', 'tsx', 'supertest', 'dockerfile-ast']) assert.ok(!existsSync(path.join(app, 'node_modules', dev)), `${dev} is a dev dependency`);
    assert.ok(!existsSync(path.join(app, 'src')), 'no TypeScript sources in the runtime image');
  });

  it('fetched every model at build time through the project command, each sha256 as in the manifest', () => {
    const modelsDir = replay.hostPath(replay.final, replay.final.env.CVSERVE_MODELS_DIR!);
    for (const entry of manifest.files) {
      const bytes = readFileSync(path.join(modelsDir, entry.file));
      assert.equal(createHash('sha256').update(bytes).digest('hex'), entry.sha256, entry.file);
      if (!entry.bundled) assert.ok(mirrored.includes(entry.file), `${entry.file} came from the mirror`);
    }
    // The directory is the run-time user's (a run-time fetch may add to it); the files stay root's.
    if (process.getuid?.() === 0) assert.equal(statSync(modelsDir).uid, numericUser(replay.final.user)!.uid);
  });

  it('answers /healthz and /readyz once the models are loaded', async () => {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    // Loading the models is slow on a busy machine: the bound only turns a hang into a failure.
    await waitReady(server.url, 600_000);
  });

  it('answers a real route: POST /canny matches native OpenCV', async () => {
    const res = await fetch(`${server.url}/canny?format=png`, {
      method: 'POST',
      headers: { 'Content-Type': 'image/jpeg' },
      body: readFileSync(image('test_face_processing.jpg')),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    const ours = await grayPixels(Buffer.from(await res.arrayBuffer()));
    const ref = await grayPixels(reference('canny_test_face_processing.png'));
    assert.ok(edgeIoU(ours.data, ref.data) >= 0.99);
  });

  it("passes the image's own HEALTHCHECK command", () => {
    const hc = replay.final.healthcheck!;
    const r = spawnSync(hc.command[0]!, hc.command.slice(1), { env: { PATH: process.env.PATH, PORT: String(server.port) }, timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr?.toString());
  });

  it('wrote nothing outside /tmp while serving', () => {
    const now = snapshot(replay.final.root, tmpDir);
    const changed = [...new Set([...before0.keys(), ...now.keys()])].filter((f) => before0.get(f) !== now.get(f));
    assert.deepEqual(changed, []);
  });

  it('stops on its STOPSIGNAL with exit code 0, and then fails the HEALTHCHECK', async () => {
    const { code, signal } = await server.stop(replay.final.stopSignal as NodeJS.Signals, 30_000);
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    assert.ok(server.output.some((l) => l.includes('shutdown complete')));
    const hc = replay.final.healthcheck!;
    const r = spawnSync(hc.command[0]!, hc.command.slice(1), { env: { PATH: process.env.PATH, PORT: String(server.port) }, timeout: 120_000 });
    assert.equal(r.status, 1);
  });
});

/** Every file and directory under `root` (except `skip`) with its size and mtime. */
function snapshot(root: string, skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    out.set(`${path.relative(root, dir)}/`, String(statSync(dir).mtimeMs));
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (p === skip) continue;
      if (entry.isDirectory()) walk(p);
      else {
        const st = statSync(p, { throwIfNoEntry: false });
        out.set(path.relative(root, p), st ? `${st.size}:${st.mtimeMs}` : 'gone');
      }
    }
  };
  walk(root);
  return out;
}
