import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { routesFrom } from '../../src/web/routes.js';
import { createTestApp } from '../helpers/app.js';
import { capturingLogger } from '../helpers/log.js';
import { image, REPO_ROOT } from '../helpers/paths.js';

const cat = readFileSync(image('cat_small.jpg'));

/** Per-channel counts computed here, independently of the plugin: sharp's RGB decode, value v in bin ⌊v·bins/256⌋. */
async function expectedCounts(bytes: Buffer, bins: number): Promise<number[][]> {
  const { data } = await sharp(bytes).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const counts = [0, 1, 2].map(() => new Array<number>(bins).fill(0));
  for (let i = 0; i < data.length; i += 3) for (let c = 0; c < 3; c++) counts[c]![Math.floor((data[i + c]! * bins) / 256)]!++;
  return counts;
}

/** Plugin files, good and bad, written next to a copy of the example. */
const FILES: Record<string, string> = {
  'bad-syntax.mjs': 'export default { name: "oops", ',
  'no-default.mjs': 'export const resource = {};',
  'bad-name.mjs': 'export default ({ z }) => ({ name: "Bad Name", summary: "x", params: z.strictObject({}), output: { kind: "image" }, run() {} });',
  'clash.mjs': 'export default ({ z }) => ({ name: "canny", summary: "again", params: z.strictObject({}), output: { kind: "image" }, run() {} });',
  'no-zod.mjs': 'export default { name: "plain", summary: "params are not zod", params: { threshold: 1 }, output: { kind: "image" }, run() {} };',
  'factory-throws.mjs': 'export default () => { throw new Error("no licence file"); };',
  'notes.txt': 'not a plugin',
  // Whatever package.json sits above the temp directory, .js files here are CommonJS.
  'package.json': '{"type": "commonjs"}',
  // CommonJS .js (no package.json here), a class export, and an init that fails.
  'size.js': `module.exports = class Size {
    constructor({ z, param }) {
      this.name = 'size';
      this.summary = 'Image size';
      this.params = z.strictObject({ scale: param.number({ min: 0.1, max: 10, default: 1, description: 'Multiply the reported size by this.' }) });
      this.output = { kind: 'json', schema: z.object({ width: z.number(), height: z.number() }) };
    }
    async run(input, p) { return { kind: 'json', body: { width: input.width * p.scale, height: input.height * p.scale } }; }
  };`,
  'init-fails.mjs': `export default ({ z }) => ({
    name: 'needs-model', summary: 'Needs a model file', params: z.strictObject({}), output: { kind: 'json', schema: z.object({}) },
    async init() { throw new Error('model.onnx not found'); },
    async run() { return { kind: 'json', body: {} }; },
  });`,
};

describe('plugins from CVSERVE_PLUGINS_DIR', () => {
  let dir: string;
  let svc: CvServe;
  const captured = capturingLogger('info');
  const logLines = () => captured.lines() as { level: number; msg: string; plugin?: string; reason?: string }[];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-plugins-'));
    copyFileSync(path.join(REPO_ROOT, 'examples/plugins/histogram.mjs'), path.join(dir, 'histogram.mjs'));
    for (const [name, text] of Object.entries(FILES)) writeFileSync(path.join(dir, name), text);
    svc = await createTestApp({ pluginsDir: dir }, { logger: captured.log });
  });
  after(async () => {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the good plugins after the built-ins and skips each broken one with a log line naming the file and the reason', () => {
    const names = svc.resources.map((r) => r.name);
    assert.deepEqual(names.slice(-3), ['histogram', 'needs-model', 'size']);
    assert.equal(names.filter((n) => n === 'canny').length, 1);
    const skipped = Object.fromEntries(logLines().filter((l) => l.msg.includes(' skipped: ')).map((l) => [path.basename(l.plugin!), l]));
    assert.deepEqual(Object.keys(skipped).sort(), ['bad-name.mjs', 'bad-syntax.mjs', 'clash.mjs', 'factory-throws.mjs', 'no-default.mjs', 'no-zod.mjs']);
    for (const line of Object.values(skipped)) assert.equal(line.level, 50, 'logged as an error');
    assert.match(skipped['bad-syntax.mjs']!.reason!, /^SyntaxError/);
    assert.equal(skipped['no-default.mjs']!.reason, 'it has no default export');
    assert.match(skipped['bad-name.mjs']!.reason!, /name "Bad Name" must be lowercase letters, digits and dashes/);
    assert.equal(skipped['clash.mjs']!.reason, 'the route /canny already exists');
    assert.match(skipped['no-zod.mjs']!.reason!, /params must be a zod object/);
    assert.equal(skipped['factory-throws.mjs']!.reason, 'Error: no licence file');
    assert.ok(logLines().some((l) => l.msg === 'plugin histogram.mjs loaded: /histogram'));
  });

  it('answers /histogram with a PNG chart by default', async () => {
    const res = await request(svc.app).post('/histogram').attach('image', cat, 'cat_small.jpg');
    assert.equal(res.status, 200);
    assert.equal(res.type, 'image/png');
    const meta = await sharp(res.body as Buffer).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 512, 256]);
    const sized = await request(svc.app).post('/histogram?width=300&height=100').set('Content-Type', 'image/jpeg').send(cat);
    const m2 = await sharp(sized.body as Buffer).metadata();
    assert.deepEqual([m2.width, m2.height], [300, 100]);
  });

  it('answers the exact counts as JSON when asked: Accept, a JSON request, or format=json', async () => {
    const expected256 = await expectedCounts(cat, 256);
    const accept = await request(svc.app).post('/histogram').set('Accept', 'application/json').attach('image', cat, 'cat.jpg');
    assert.equal(accept.status, 200);
    assert.equal(accept.type, 'application/json');
    assert.deepEqual(accept.body, {
      width: 1000,
      height: 1334,
      bins: 256,
      channels: [
        { name: 'red', counts: expected256[0] },
        { name: 'green', counts: expected256[1] },
        { name: 'blue', counts: expected256[2] },
      ],
    });
    for (const channel of accept.body.channels) assert.equal(channel.counts.reduce((a: number, b: number) => a + b, 0), 1000 * 1334);

    const json = await request(svc.app).post('/histogram').send({ imageBase64: cat.toString('base64'), bins: 4 });
    assert.equal(json.status, 200);
    assert.deepEqual(json.body.channels.map((c: { counts: number[] }) => c.counts), await expectedCounts(cat, 4));

    const format = await request(svc.app).post('/histogram').field('format', 'json').field('bins', '16').attach('image', cat, 'cat.jpg');
    assert.equal(format.type, 'application/json');
    assert.equal(format.body.bins, 16);
    assert.deepEqual(format.body.channels[2].counts, (await expectedCounts(cat, 16))[2]);
  });

  it("validates the plugin's parameters like any route's", async () => {
    const res = await request(svc.app).post('/histogram?bins=0').set('Content-Type', 'image/jpeg').send(cat);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body, { status: 'bad request', message: 'Invalid parameter: bins must be ≥ 1', code: 'BAD_PARAMETER' });
    const unknown = await request(svc.app).post('/histogram?colour=red').set('Content-Type', 'image/jpeg').send(cat);
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.message, /unknown parameter colour/);
  });

  it('serves a CommonJS class plugin, and a plugin whose init failed answers 503 with the reason', async () => {
    const size = await request(svc.app).post('/size').field('scale', '0.5').attach('image', cat, 'cat.jpg');
    assert.equal(size.status, 200);
    assert.deepEqual(size.body, { width: 500, height: 667 });
    const broken = await request(svc.app).post('/needs-model').attach('image', cat, 'cat.jpg');
    assert.equal(broken.status, 503);
    assert.equal(broken.body.code, 'MODEL_UNAVAILABLE');
    assert.match(broken.body.message, /\/needs-model is unavailable: failed to initialise: model\.onnx not found/);
  });

  it("appears in /openapi.json with its parameters and in the playground's list", async () => {
    const doc = (await request(svc.app).get('/openapi.json')).body;
    const params = doc.paths['/histogram'].post.parameters.map((p: { name: string }) => p.name);
    assert.deepEqual(params, ['bins', 'format', 'width', 'height']);
    const routes = routesFrom(doc);
    const histogram = routes.find((r) => r.name === 'histogram');
    assert.ok(histogram, 'the playground lists /histogram');
    assert.equal(histogram.summary, 'Per-channel histogram (chart or counts)');
    assert.deepEqual(histogram.params.map((p) => [p.name, p.schema.default]), [['bins', 256], ['format', undefined], ['width', 512], ['height', 256]]);
    assert.deepEqual(routes.map((r) => r.name), svc.resources.map((r) => r.name));
    const list = await request(svc.app).get('/').set('Accept', 'application/json');
    assert.ok(list.body.routes.includes('/histogram'));
  });
});
