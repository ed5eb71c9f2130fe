import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { CvServe } from '../../src/app.js';
import { createTestApp } from '../helpers/app.js';
import { MODELS_DIR, REPO_ROOT } from '../helpers/paths.js';

/**
 * The README's usage examples, run as a reader would paste them: every code block under the usage
 * sections, against a real server on 127.0.0.1, in a temporary copy of the checkout's data/ and
 * examples/ so their output files land there. A block is either run or on the short skip-list below
 * with its reason; a block that is neither, or a skip-list entry that matches nothing, fails.
 */

const run = promisify(execFile);
/** tsx's loader by absolute URL: the examples run outside the checkout, where `--import tsx` would not resolve. */
const TSX = import.meta.resolve('tsx');
const USAGE_SECTIONS = ['Quick start', 'Sending an image: four ways', 'Use cvserve as a DeepStack / CodeProject.AI server', 'Faces', 'Playground and API docs', 'CLI', 'Plugins'];

/** Blocks not run, found by a line they contain, and why. */
const SKIP: { contains: string; reason: string }[] = [
  { contains: 'npm ci && npm start', reason: 'installs, starts the service and runs the whole suite (.ci/run): this test serves the same app on its own port' },
];

/** What the README's addresses stand for here: the test server, and a loopback photo server for the URL examples. */
function localize(text: string, port: number, photos: string): string {
  return text
    .replaceAll('http://localhost:8080', `http://127.0.0.1:${port}`)
    .replace(/https:\/\/example\.com\/[\w./-]+\.jpg/g, (url) => `${photos}/${path.basename(url)}`);
}

interface Block {
  section: string;
  lang: string;
  code: string;
  /** First line, to name the block in messages. */
  title: string;
}

function readmeBlocks(): Block[] {
  const text = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks: Block[] = [];
  let section = '';
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.+)$/.exec(lines[i]!);
    if (heading) section = heading[1]!.trim();
    const fence = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (USAGE_SECTIONS.includes(section)) {
      const code = body.join('\n');
      blocks.push({ section, lang: fence[1] || 'text', code, title: body.find((l) => l.trim() && !l.startsWith('#') && !l.startsWith('//')) ?? '' });
    }
  }
  return blocks;
}

/** Files a shell line writes: curl -o FILE, --out FILE, > FILE. */
function outputsOf(code: string): string[] {
  const out: string[] = [];
  for (const line of code.split('\n')) {
    const command = line.replace(/\s#.*$/, '');
    for (const m of command.matchAll(/(?:\s-o|\s--out|\s>)\s+([\w./-]+)/g)) out.push(m[1]!);
  }
  return out;
}

/** The top-level JSON objects in a text: each `{` at a line start or right after another object, to its balancing `}`. */
function jsonValues(text: string): string[] {
  const values: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '{' && (i === 0 || text[i - 1] === '\n' || text[i - 1] === '}')) {
      let depth = 0;
      let inString = false;
      let j = i;
      for (; j < text.length; j++) {
        const c = text[j];
        if (inString) {
          if (c === '\\') j++;
          else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === '{') depth++;
        else if (c === '}' && --depth === 0) break;
      }
      values.push(text.slice(i, j + 1));
      i = j + 1;
    } else i++;
  }
  return values;
}

describe('README examples', () => {
  let svc: CvServe;
  let server: http.Server;
  let photoServer: http.Server;
  let port: number;
  let photos: string;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const blocks = readmeBlocks();
  const covered: string[] = [];

  before(async () => {
    svc = await createTestApp({ pluginsDir: path.join(REPO_ROOT, 'examples/plugins'), allowPrivateNetworks: true });
    server = svc.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
    // Any *.jpg asked of the photo server is the astronaut sample: the README's example URLs name made-up photos.
    photoServer = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'image/jpeg' }).end(readFileSync(path.join(REPO_ROOT, 'data/astronaut.jpg'))));
    await new Promise<void>((resolve) => photoServer.listen(0, '127.0.0.1', resolve));
    photos = `http://127.0.0.1:${(photoServer.address() as AddressInfo).port}`;

    work = mkdtempSync(path.join(os.tmpdir(), 'cvserve-readme-'));
    cpSync(path.join(REPO_ROOT, 'data'), path.join(work, 'data'), { recursive: true, filter: (f) => !/\.sqlite/.test(f) });
    cpSync(path.join(REPO_ROOT, 'examples'), path.join(work, 'examples'), { recursive: true });
    // `cvserve` on the path, as `npm link` puts it, running the sources.
    const bin = path.join(work, '.bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'cvserve'), `#!/bin/sh\nexec "${process.execPath}" --import "${TSX}" "${path.join(REPO_ROOT, 'src/cli.ts')}" "$@"\n`);
    chmodSync(path.join(bin, 'cvserve'), 0o755);
    env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      CVSERVE_MODELS_DIR: MODELS_DIR,
      CVSERVE_MODELS_FETCH: 'off',
      CVSERVE_ALLOW_PRIVATE_NETWORKS: 'true', // the CLI's URL example fetches from the loopback photo server
      // Each CLI run starts its own engines on a machine the other tests keep busy: small pools, and no deadline to race.
      CVSERVE_OPENCV_WORKERS: '1',
      CVSERVE_ONNX_THREADS: '1',
      CVSERVE_REQUEST_TIMEOUT_MS: '600000',
      NODE_PATH: path.join(REPO_ROOT, 'node_modules'),
    };
  });
  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await new Promise((resolve) => photoServer?.close(resolve));
    await svc?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('finds the usage sections and their blocks', () => {
    const sections = new Set(blocks.map((b) => b.section));
    for (const s of USAGE_SECTIONS) assert.ok(sections.has(s), `README has a block under "${s}"`);
    for (const skip of SKIP) assert.ok(blocks.some((b) => b.code.includes(skip.contains)), `skip-list entry matches a block: ${skip.contains}`);
    const unknown = blocks.filter((b) => !['sh', 'ts', 'js'].includes(b.lang));
    assert.deepEqual(unknown.map((b) => `${b.section}: ${b.lang}`), [], 'every usage block is sh, ts or js');
  });

  it('runs every shell block against the server, each exits 0 and writes what it says', async (t) => {
    const shell = blocks.filter((b) => b.lang === 'sh');
    let skipped = 0;
    for (const block of shell) {
      const where = `${block.section}: ${block.title}`;
      const skip = SKIP.find((s) => block.code.includes(s.contains));
      if (skip) {
        t.diagnostic(`skipped ${where} (${skip.reason})`);
        skipped++;
        continue;
      }
      const code = localize(block.code, port, photos);
      const outputs = outputsOf(code);
      for (const file of outputs) rmSync(path.join(work, file), { force: true });
      const result = await run('bash', ['-e', '-o', 'pipefail', '-c', code], { cwd: work, env, maxBuffer: 64 * 1024 * 1024 }).catch((err: { code: number; stdout: string; stderr: string }) => err);
      assert.equal('code' in result ? result.code : 0, 0, `${where}: ${String(result.stderr).slice(-400)}`);
      assert.doesNotMatch(result.stdout, /"code":"[A-Z_]+"/, `${where} answered an error`);
      for (const file of outputs) {
        const full = path.join(work, file);
        assert.ok(existsSync(full), `${where} wrote ${file}`);
        if (/\.(jpe?g|png|webp)$/.test(file)) {
          const meta = await sharp(full).metadata();
          assert.equal(meta.format, file.endsWith('.png') ? 'png' : file.endsWith('.webp') ? 'webp' : 'jpeg', `${where}: ${file} is an image`);
        } else if (file.endsWith('.json')) JSON.parse(readFileSync(full, 'utf8'));
      }
      // Whatever printed JSON printed JSON that parses (answers follow each other without newlines when piped).
      for (const value of jsonValues(result.stdout)) JSON.parse(value);
      covered.push(where);
    }
    t.diagnostic(`ran: ${covered.join(' | ')}`);
    assert.equal(covered.length, shell.length - skipped);
    assert.ok(covered.length >= 4, `ran ${covered.length} blocks`);
  });

  it('runs the typed-client snippet with tsx', async () => {
    const block = blocks.find((b) => b.lang === 'ts' && b.code.includes('CvServeClient'));
    assert.ok(block, 'the README has the typed-client snippet');
    // 'cvserve/client' is the package's export of src/client.ts; here, the source itself.
    const code = localize(block.code, port, photos).replace(`'cvserve/client'`, `'${path.join(REPO_ROOT, 'src/client.ts')}'`);
    const file = path.join(work, 'client-example.mts');
    writeFileSync(file, code);
    const { stdout } = await run(process.execPath, ['--import', TSX, file], { cwd: work, env: { ...env, CVSERVE_API_KEY: '' } });
    assert.equal(stdout.trim(), '1 bobsled jpeg image', 'faces, top class, edge format, histogram answer');
  });

  it('loads the plugin snippet from a plugins directory and serves its route', async () => {
    const block = blocks.find((b) => b.lang === 'js' && b.code.includes('export default'));
    assert.ok(block, 'the README has the plugin snippet');
    const name = /^\/\/ plugins\/([\w-]+\.mjs)/.exec(block.code)?.[1];
    assert.equal(name, 'size.mjs');
    const dir = path.join(work, 'plugins');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, name), block.code);
    const withPlugin = await createTestApp({ pluginsDir: dir });
    try {
      const { default: request } = await import('supertest');
      const answer = await request(withPlugin.app).post('/size?scale=2').attach('image', readFileSync(path.join(REPO_ROOT, 'data/coffee.jpg')), 'coffee.jpg');
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, { width: 1200, height: 800 });
    } finally {
      await withPlugin.close();
    }
  });
});
