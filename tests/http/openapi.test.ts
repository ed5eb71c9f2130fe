import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import request from 'supertest';
import type { CvServe } from '../../src/app.js';
import { CvServeClient } from '../../src/client.js';
import { ERRORS, type ErrorCode } from '../../src/errors.js';
import { describeParams } from '../../src/resources/describe.js';
import { builtinResources } from '../../src/resources/registry.js';
import { createTestApp } from '../helpers/app.js';
import { listen } from '../helpers/http.js';
import { REPO_ROOT } from '../helpers/paths.js';

type Doc = Record<string, any>;

const PLUGINS_DIR = `${REPO_ROOT}/examples/plugins`;

/** Follows a local $ref (#/components/...). */
function deref(doc: Doc, node: Doc): Doc {
  if (typeof node?.$ref !== 'string') return node;
  return node.$ref.slice(2).split('/').reduce((at: Doc, key: string) => at[key], doc);
}

describe('/openapi.json', () => {
  let svc: CvServe;
  let doc: Doc;

  before(async () => {
    svc = await createTestApp({ pluginsDir: PLUGINS_DIR });
    const res = await request(svc.app).get('/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.type, 'application/json');
    doc = res.body;
  });
  after(() => svc.close());

  it('validates as OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.deepEqual(result.errors ?? [], []);
    assert.equal(result.valid, true);
    assert.equal(validator.version, '3.1');
  });

  it('lists every registered route, the built-ins and the plugin', () => {
    const names = svc.resources.map((r) => r.name);
    for (const builtin of builtinResources()) assert.ok(names.includes(builtin.name), `${builtin.name} is served`);
    assert.ok(names.includes('histogram'), 'the example plugin is served');
    for (const name of names) assert.ok(doc.paths[`/${name}`], `/${name} is in the document`);
    for (const path of ['/', '/ping', '/healthz', '/readyz', '/metrics', '/docs', '/openapi.json']) assert.ok(doc.paths[path], `${path} is in the document`);
  });

  it("gives every route each of its parameters, with the schema's type, default, bounds and description, in every input way", () => {
    for (const resource of svc.resources) {
      const item = doc.paths[`/${resource.name}`];
      const params = describeParams(resource.params);
      assert.ok(params.length > 0, `/${resource.name} has parameters`);
      const defaults = resource.params.parse({}) as Record<string, unknown>;
      const get = item.get.parameters as Doc[];
      const post = item.post.parameters as Doc[];
      const multipart = item.post.requestBody.content['multipart/form-data'].schema;
      const json = item.post.requestBody.content['application/json'].schema;
      assert.deepEqual(get[0], { name: 'url', in: 'query', required: true, description: 'Absolute http(s) URL of the image.', schema: { type: 'string', format: 'uri' } });
      // Parameters are query parameters only in the multipart way: Swagger UI fills every form property with a sample.
      assert.deepEqual([multipart.required, Object.keys(multipart.properties)], [['image'], ['image']]);
      assert.deepEqual(json.required.slice(0, 1), ['imageBase64']);
      assert.equal(item.post.requestBody.content['image/*'].schema.format, 'binary');
      for (const p of params) {
        const where = `/${resource.name} ${p.name}`;
        const inGet = get.find((q) => q.name === p.name);
        const inPost = post.find((q) => q.name === p.name);
        assert.ok(inGet && inPost, `${where} is a query parameter of GET and POST`);
        assert.ok(p.description.length > 10, `${where} has a description`);
        assert.equal(inGet.description, p.description);
        assert.deepEqual(json.properties[p.name], p.schema, `${where} in the JSON body`);
        const { description: _d, ...withoutDescription } = p.schema;
        assert.deepEqual(inGet.schema, withoutDescription);
        assert.ok(['number', 'integer', 'boolean', 'string', 'array'].includes(p.schema.type as string), `${where} has a plain type, got ${JSON.stringify(p.schema)}`);
        if (defaults[p.name] !== undefined) assert.deepEqual(p.schema.default, defaults[p.name], `${where} default`);
        else assert.equal('default' in p.schema, false, `${where} has no default`);
      }
    }
  });

  it('shows the exact parameter schemas of /canny, /detect and the plugin', () => {
    const canny = doc.paths['/canny'].post.requestBody.content['application/json'].schema.properties;
    assert.deepEqual(canny.threshold1, { type: 'number', minimum: 0, maximum: 10000, default: 100, description: 'First hysteresis threshold (cv.Canny threshold1).' });
    assert.deepEqual(canny.format, { type: 'string', enum: ['jpeg', 'png', 'webp'], default: 'jpeg', description: 'Output image format.' });
    const detect = doc.paths['/detect'].get.parameters as Doc[];
    const byName = (n: string) => detect.find((p) => p.name === n)!;
    assert.deepEqual(byName('scaleFactor').schema, { type: 'number', minimum: 1.01, maximum: 2, default: 1.1 });
    assert.deepEqual(byName('minNeighbors').schema, { type: 'integer', minimum: 0, maximum: 50, default: 5 });
    assert.deepEqual(byName('maxSide').schema, { type: 'integer', minimum: 32, maximum: 20000 });
    assert.equal(byName('maxSide').required, false);
    assert.deepEqual(byName('draw').schema, { type: 'boolean', default: false });
    const histogram = doc.paths['/histogram'].get.parameters as Doc[];
    assert.deepEqual(
      histogram.map((p) => p.name),
      ['url', 'bins', 'format', 'width', 'height'],
    );
    assert.deepEqual(histogram[1].schema, { type: 'integer', minimum: 1, maximum: 256, default: 256 });
    assert.deepEqual(histogram[2].schema, { type: 'string', enum: ['png', 'json'] });
  });

  it('describes each answer: image bytes or {imageBase64, format}, JSON by the output schema, drawn or rendered images', () => {
    for (const resource of svc.resources) {
      const ok = doc.paths[`/${resource.name}`].post.responses['200'].content;
      const types = Object.keys(ok).sort();
      if (resource.output.kind === 'image') {
        assert.deepEqual(types, ['application/json', 'image/jpeg', 'image/png', 'image/webp', 'text/event-stream'], resource.name);
        assert.deepEqual(ok['application/json'].schema, { $ref: '#/components/schemas/ImageAsJson' });
      } else {
        const withImages = resource.output.drawable || resource.output.rendersImage;
        assert.deepEqual(types, withImages ? ['application/json', 'image/jpeg', 'image/png', 'image/webp', 'text/event-stream'] : ['application/json', 'text/event-stream'], resource.name);
        assert.equal(ok['application/json'].schema.type, 'object', resource.name);
      }
    }
    const detect = doc.paths['/detect'].post.responses['200'].content['application/json'].schema;
    assert.deepEqual(detect.required, ['status', 'result']);
    const box = detect.properties.result.items.properties.box;
    assert.equal(box.description, '[x1, y1, x2, y2] in original-image pixels');
    assert.deepEqual([box.type, box.minItems, box.maxItems, box.prefixItems.map((t: Doc) => t.type)], ['array', 4, 4, ['integer', 'integer', 'integer', 'integer']]);
    const histogram = doc.paths['/histogram'].post.responses['200'].content['application/json'].schema;
    assert.deepEqual(Object.keys(histogram.properties), ['width', 'height', 'bins', 'channels']);
  });

  it('lists every error code of the registry under its status, on every resource operation', () => {
    const codes = Object.keys(ERRORS) as ErrorCode[];
    for (const resource of svc.resources) {
      for (const method of ['get', 'post']) {
        const responses = doc.paths[`/${resource.name}`][method].responses;
        for (const code of codes) {
          const status = String(ERRORS[code].status);
          if (code === 'NOT_FOUND') continue; // a route that exists answers no 404
          const response = deref(doc, responses[status]);
          assert.ok(response, `${method} /${resource.name} documents ${status}`);
          const schema = response.content['application/json'].schema;
          assert.ok(schema.properties.code.enum.includes(code), `${method} /${resource.name} ${status} lists ${code}`);
          assert.ok(response.description.includes(`\`${code}\`: ${ERRORS[code].message}`), `${code} is explained`);
        }
      }
    }
    assert.deepEqual(doc.components.schemas.Error.properties.code.enum, codes);
    assert.ok(deref(doc, doc.paths['/canny'].post.responses['405']).headers.Allow);
    assert.ok(deref(doc, doc.paths['/canny'].post.responses['503']).headers['Retry-After']);
  });

  it('is what the typed client reads, and the client has a method per built-in route', async () => {
    const server = await listen(svc.handler);
    try {
      const client = new CvServeClient({ baseUrl: server.url });
      assert.deepEqual(await client.openapi(), doc);
      for (const builtin of builtinResources()) {
        assert.equal(typeof (client as unknown as Record<string, unknown>)[builtin.name], 'function', `client.${builtin.name}()`);
      }
    } finally {
      await server.close();
    }
  });
});

describe('/docs and /', () => {
  let svc: CvServe;
  before(async () => {
    svc = await createTestApp({}, { resources: builtinResources().slice(0, 1) });
  });
  after(() => svc.close());

  it('serves Swagger UI from the package, nothing from a CDN', async () => {
    const redirect = await request(svc.app).get('/docs');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, 'docs/');
    const page = await request(svc.app).get('/docs/');
    assert.equal(page.status, 200);
    assert.equal(page.type, 'text/html');
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(assets, ['./swagger-ui.css', './index.css', './cvserve.css', './favicon-32x32.png', '../', '../openapi.json', './swagger-ui-bundle.js', './swagger-initializer.js']);
    for (const asset of assets.filter((a) => a.startsWith('./'))) {
      const res = await request(svc.app).get(`/docs/${asset.slice(2)}`).buffer(true).parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      });
      assert.equal(res.status, 200, asset);
      assert.ok((res.body as Buffer).length > 50, asset);
    }
    const init = await request(svc.app).get('/docs/swagger-initializer.js');
    assert.match(init.text, /validatorUrl: null/);
    assert.match(init.text, /'\.\.\/openapi\.json'/);
    assert.doesNotMatch(page.text + init.text, /https?:\/\//);
    assert.equal((await request(svc.app).get('/docs/package.json')).status, 404);
  });

  it('answers / with the playground for browsers and the route list for JSON clients', async () => {
    const html = await request(svc.app).get('/').set('Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
    assert.equal(html.status, 200);
    assert.equal(html.type, 'text/html');
    assert.match(html.text, /<script type="module" src="playground\/web\/playground\.js"><\/script>/);
    assert.doesNotMatch(html.text, /(src|href)="https?:/);
    for (const accept of ['application/json', '*/*']) {
      const json = await request(svc.app).get('/').set('Accept', accept);
      assert.equal(json.status, 200);
      assert.deepEqual(json.body, { name: 'cvserve', routes: ['/ping', '/canny'], docs: '/docs', openapi: '/openapi.json' });
    }
    for (const module of ['web/playground.js', 'web/render.js', 'web/curl.js', 'web/routes.js', 'client.js']) {
      const js = await request(svc.app).get(`/playground/${module}`);
      assert.equal(js.status, 200, module);
      assert.equal(js.type, 'text/javascript', module);
      assert.doesNotMatch(js.text, /:\s*(string|number|Promise<)/, `${module} is JavaScript, not TypeScript`);
    }
    assert.equal((await request(svc.app).get('/playground/web/page.js')).status, 404);
    assert.equal((await request(svc.app).get('/playground/cli.js')).status, 404);
  });
});
