/**
 * What the Dockerfile must say, checked without building it: lint, the base image, install-script
 * rules, user, port, signal and HEALTHCHECK in agreement with the app's config, CMD as `npm start`,
 * only known settings in ENV, and .dockerignore in both directions. The image itself is built and
 * run for real by scripts/image-test.sh (.ci/run): every route, the build-time model fetch,
 * read-only root, HEALTHCHECK, restart and SIGTERM are checked there.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { SETTINGS } from '../../src/config.js';
import { numericUser } from '../helpers/dockerfile.js';
import { REPO_ROOT } from '../helpers/paths.js';

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
    // ENV carries over into a stage built FROM another stage.
    const stageEnv = new Map<string, string[]>();
    let copied: string[] = [];
    let env: string[] = [];
    for (const i of parsed.getInstructions()) {
      if (i.getKeyword() === 'FROM') {
        const from = i as unknown as { getImage(): string | null; getBuildStage(): string | null };
        [copied, env] = [[], [...(stageEnv.get(from.getImage() ?? '') ?? [])]];
        stageEnv.set(from.getBuildStage() ?? '', env);
      }
      if (i.getKeyword() === 'COPY') copied.push(...i.getArguments().slice(0, -1).map((a) => a.getValue()));
      if (i.getKeyword() === 'ENV') env.push(i.getArgumentsContent() ?? '');
      if (i.getKeyword() === 'RUN' && /\bnpm ci\b/.test(i.getArgumentsContent() ?? '')) {
        assert.ok(copied.includes('package.json'), `package.json copied before: ${i.getArgumentsContent()}`);
        assert.ok(env.some((e) => /\bONNXRUNTIME_NODE_INSTALL=skip\b/.test(e)), `ONNXRUNTIME_NODE_INSTALL=skip before: ${i.getArgumentsContent()}`);
        // A native addon (better-sqlite3) compiles against the base image's Node headers: node-gyp's
        // header download, like the prebuilt download, is unreachable behind a registry mirror.
        assert.ok(env.some((e) => /^npm_config_nodedir=\/usr\/local$/.test(e)), `npm_config_nodedir=/usr/local before: ${i.getArgumentsContent()}`);
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
    // The runtime stage (the last): build stages may set what npm and node-gyp need.
    const lastFrom = parsed.getFROMs().at(-1)!.getRange().start.line;
    const names = parsed
      .getENVs()
      .filter((e) => e.getRange().start.line > lastFrom)
      .flatMap((e) => e.getProperties().map((p) => p.getName()));
    assert.ok(names.includes('CVSERVE_MODELS_DIR'), 'the runtime stage sets its settings');
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
    // The addon's install step compiles every source next to binding.gyp.
    const sources = readdirSync(path.join(REPO_ROOT, 'native', 'jpeg')).filter((f) => /\.(c|h|gyp)$/.test(f));
    assert.ok(sources.includes('enlarge.c'));
    for (const f of sources) assert.ok(context.has(`native/jpeg/${f}`), `native/jpeg/${f} in the context`);
  });
});
