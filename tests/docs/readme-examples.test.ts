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

/** A shell command of a block (its lines joined as written) and the answer the README prints for it, if any. */
interface Command {
  text: string;
  /** The `# {...}` after the command (same line, or the comment lines right below it). */
  expected?: string;
}

/** Splits a shell block into commands; a line ending in `\\` or `|` continues onto the next. */
function commandsOf(code: string): Command[] {
  const commands: Command[] = [];
  const lines = code.split('\n');
  let lastEnd = -2;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    if (line.trimStart().startsWith('#')) {
      const last = commands.at(-1);
      // A printed answer: `# {` right under a command, continued by lines starting `#  `.
      if (last && last.expected === undefined && /^#\s*\{/.test(line) && i - 1 === lastEnd) {
        let text = line.replace(/^#\s*/, '');
        while (i + 1 < lines.length && /^#\s{2,}\S/.test(lines[i + 1]!)) text += lines[++i]!.replace(/^#\s*/, '');
        last.expected = text;
      }
      continue;
    }
    const parts = [line];
    while (/(\\|\|)\s*$/.test(parts.at(-1)!) && i + 1 < lines.length) parts.push(lines[++i]!);
    const text = parts.join('\n');
    lastEnd = i;
    const inline = /\s#\s*(\{.*)$/.exec(parts.at(-1)!);
    commands.push({ text, expected: inline?.[1] });
  }
  return commands;
}

const ELIDED = '\u2026';

/**
 * The README's printed answer as a value to compare: `,...` (fields or elements left out) becomes a
 * marker key/element, so an object the README shows whole must match whole. Text after the closing
 * brace (a remark) is dropped. `{"a","b"}` (only field names) is an object with those fields.
 */
function parseExpected(text: string): unknown {
  const json = jsonValues(text)[0] ?? text;
  const names = /^\{("\w+"(?:,"\w+")*)\}$/.exec(json);
  if (names) return { [`${ELIDED}names`]: JSON.parse(`[${names[1]}]`) as string[] };
  let out = '';
  const stack: string[] = [];
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += json[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') stack.push(c);
    else if (c === '}' || c === ']') stack.pop();
    if (c === ',' && json.startsWith('...', i + 1)) {
      out += stack.at(-1) === '{' ? `,"${ELIDED}":true` : `,"${ELIDED}"`;
      i += 3;
      continue;
    }
    out += c;
  }
  return JSON.parse(out);
}

/** Measured values the README rounds or shows from one run: how far the answer may be from it. */
function tolerance(key: string): number | 'any' | undefined {
  if (/Ms$/.test(key)) return 'any'; // times of one run on one machine
  if (['confidence', 'score', 'similarity', 'probability'].includes(key)) return 0.01; // printed to 2-3 digits
  return undefined; // everything else exactly: boxes, counts, labels, messages
}

/** Every difference between the README's printed answer and the real one, as `path: why` lines. */
function differences(expected: unknown, actual: unknown, at = '$', key = ''): string[] {
  if (typeof expected === 'number') {
    if (typeof actual !== 'number') return [`${at}: ${JSON.stringify(actual)} is not a number`];
    const tol = tolerance(key);
    if (tol === 'any') return actual >= 0 ? [] : [`${at}: ${actual} < 0`];
    return Math.abs(actual - expected) <= (tol ?? 0) ? [] : [`${at}: README ${expected}, answer ${actual}${tol ? ` (tolerance ${tol})` : ''}`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${at}: not a list`];
    const elided = expected.at(-1) === ELIDED;
    const shown = elided ? expected.slice(0, -1) : expected;
    const out: string[] = [];
    if (elided ? actual.length < shown.length : actual.length !== shown.length) out.push(`${at}: ${actual.length} elements, README shows ${shown.length}${elided ? ' and more' : ''}`);
    shown.forEach((e, i) => out.push(...differences(e, actual[i], `${at}[${i}]`, key)));
    return out;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return [`${at}: not an object`];
    const exp = expected as Record<string, unknown>;
    const act = actual as Record<string, unknown>;
    const names = exp[`${ELIDED}names`] as string[] | undefined;
    if (names) return JSON.stringify(Object.keys(act).sort()) === JSON.stringify([...names].sort()) ? [] : [`${at}: fields ${Object.keys(act).join(',')}, README ${names.join(',')}`];
    const elided = ELIDED in exp;
    const shown = Object.keys(exp).filter((k) => k !== ELIDED);
    const out: string[] = [];
    for (const k of shown) {
      if (!(k in act)) out.push(`${at}.${k}: missing`);
      else out.push(...differences(exp[k], act[k], `${at}.${k}`, k));
    }
    if (!elided) for (const k of Object.keys(act)) if (!(k in exp)) out.push(`${at}.${k}: in the answer, not in the README (add it or ",...")`);
    return out;
  }
  return expected === actual ? [] : [`${at}: README ${JSON.stringify(expected)}, answer ${JSON.stringify(actual)}`];
}

/** Every curl fails on an HTTP error and prints its body (curl without it exits 0 on 4xx/5xx). */
const strictCurl = (code: string) => code.replace(/(^|[\s(;|])curl /g, '$1curl --fail-with-body -sS ');

/** The block as one script whose output marks where each command's output ends. */
function withMarkers(commands: Command[]): string {
  return commands.map((c, i) => `${strictCurl(c.text)}\nprintf '\\n\\036%d\\n' ${i}`).join('\n');
}

function splitByMarkers(stdout: string, n: number): string[] {
  const outputs: string[] = [];
  let rest = stdout;
  for (let i = 0; i < n; i++) {
    const marker = `\n\u001e${i}\n`;
    const at = rest.indexOf(marker);
    assert.ok(at >= 0, `command ${i} finished`);
    outputs.push(rest.slice(0, at));
    rest = rest.slice(at + marker.length);
  }
  return outputs;
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

  it('reads the printed answers the way they are meant: fields left out only where the README says ...', () => {
    assert.deepEqual(parseExpected('{"a":1,...,"b":[{"c":2},...]} (remark)'), { a: 1, [ELIDED]: true, b: [{ c: 2 }, ELIDED] });
    assert.deepEqual(differences(parseExpected('{"a":1}'), { a: 1, b: 2 }), ['$.b: in the answer, not in the README (add it or ",...")']);
    assert.deepEqual(differences(parseExpected('{"a":1,...}'), { a: 1, b: 2 }), []);
    assert.deepEqual(differences(parseExpected('{"x":[1,2]}'), { x: [1, 3] }), ['$.x[1]: README 2, answer 3']);
    assert.deepEqual(differences(parseExpected('{"confidence":0.891,"processMs":26}'), { confidence: 0.8951, processMs: 3 }), []);
    assert.deepEqual(differences(parseExpected('{"confidence":0.891}'), { confidence: 0.91 }), ['$.confidence: README 0.891, answer 0.91 (tolerance 0.01)']);
    assert.deepEqual(commandsOf('curl a  # {"x":1}\ncurl b\n# {"y":\n#  2}\n(printf x) |\n  curl c'), [
      { text: 'curl a  # {"x":1}', expected: '{"x":1}' },
      { text: 'curl b', expected: '{"y":2}' },
      { text: '(printf x) |\n  curl c', expected: undefined },
    ]);
  });

  it('runs every shell block against the server, each exits 0, writes what it says and prints what the README prints', async (t) => {
    const shell = blocks.filter((b) => b.lang === 'sh');
    const compared: string[] = [];
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
      // Everything a block reaches is on this machine: a new URL in the README must be localized above.
      for (const url of code.matchAll(/\bhttps?:\/\/[^\s'"]+/g)) {
        assert.match(new URL(url[0]).hostname, /^(127\.0\.0\.1|\[::1\])$/, `${where}: ${url[0]} is not on this machine`);
      }
      const outputs = outputsOf(code);
      for (const file of outputs) rmSync(path.join(work, file), { force: true });
      const commands = commandsOf(code);
      const result = await run('bash', ['-e', '-o', 'pipefail', '-c', withMarkers(commands)], { cwd: work, env, maxBuffer: 64 * 1024 * 1024 }).catch((err: { code: number; stdout: string; stderr: string }) => err);
      assert.equal('code' in result ? result.code : 0, 0, `${where}: ${String(result.stdout).slice(-300)} ${String(result.stderr).slice(-400)}`);
      const printed = splitByMarkers(result.stdout, commands.length);
      for (const [i, command] of commands.entries()) {
        const answers = jsonValues(printed[i]!).map((v) => JSON.parse(v) as Record<string, unknown>);
        for (const answer of answers) {
          assert.ok(answer.success !== false && answer.status !== 'error', `${where}: ${command.text.split('\n')[0]} answered an error: ${JSON.stringify(answer).slice(0, 300)}`);
        }
        if (command.expected === undefined) continue;
        assert.equal(answers.length, 1, `${where}: ${command.text.split('\n')[0]} printed one answer`);
        const diff = differences(parseExpected(command.expected), answers[0]);
        assert.deepEqual(diff, [], `${where}: ${command.text.split('\n')[0]}: the README's printed answer differs`);
        compared.push(command.text.split('\n')[0]!.slice(0, 60));
      }
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
    t.diagnostic(`printed answers compared: ${compared.length}`);
    assert.equal(covered.length, shell.length - skipped);
    assert.ok(covered.length >= 4, `ran ${covered.length} blocks`);
    // The printed answers of the README (Quick start, DeepStack, Faces, CLI): each one compared.
    const printedInReadme = shell.filter((b) => !SKIP.some((sk) => b.code.includes(sk.contains))).flatMap((b) => commandsOf(b.code)).filter((c) => c.expected !== undefined);
    assert.equal(compared.length, printedInReadme.length, 'every printed answer was compared');
    assert.ok(compared.length >= 9, `compared ${compared.length} printed answers`);
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
