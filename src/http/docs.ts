import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response, type Router } from 'express';
import { AppError } from '../errors.js';
import type { AnyResource } from '../resources/contract.js';
import { docsCss, docsHtml, docsInitializerJs, playgroundCss, playgroundHtml } from '../web/page.js';
import { availableSamples, samplePath } from '../web/samples.js';
import type { Doc } from './openapi.js';

/**
 * The faces of the service for people: `GET /openapi.json`, interactive docs at `/docs` (Swagger UI
 * from the swagger-ui-dist package, nothing from a CDN), and `GET /`, the playground for browsers
 * or the route list as JSON for everything else.
 */

const SWAGGER_FILES = new Set(['swagger-ui.css', 'index.css', 'swagger-ui-bundle.js', 'favicon-32x32.png', 'favicon-16x16.png']);
/** Browser modules the playground loads, relative to src/ (or dist/src/ once built). */
const BROWSER_MODULES = new Set(['client.js', 'web/playground.js', 'web/render.js', 'web/curl.js', 'web/routes.js', 'web/route-info.js', 'web/faces-panel.js', 'web/dom.js']);

const srcRoot = fileURLToPath(new URL('../', import.meta.url));
const swaggerDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

const compiled = new Map<string, Promise<string>>();

/**
 * A browser module's JavaScript: the compiled file when the package is built (dist/), or, when
 * running from the TypeScript sources (tsx, tests), the source transpiled once by the typescript
 * dev dependency. Either way no step is needed before the page works.
 */
function browserModule(name: string): Promise<string> {
  let js = compiled.get(name);
  if (!js) {
    js = (async () => {
      const built = path.join(srcRoot, name);
      if (existsSync(built)) return readFile(built, 'utf8');
      const source = path.join(srcRoot, name.replace(/\.js$/, '.ts'));
      const ts = (await import('typescript')).default;
      const out = ts.transpileModule(await readFile(source, 'utf8'), {
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 },
        fileName: source,
      });
      return out.outputText;
    })();
    js.catch(() => compiled.delete(name));
    compiled.set(name, js);
  }
  return js;
}

function send(res: Response, type: string, body: string | Buffer): void {
  res.setHeader('Cache-Control', 'no-cache');
  res.type(type).send(body);
}

/** The docs router's own OpenAPI path items: the playground (or route list), the docs page and the document itself. */
export function docsOpenApi(): Record<string, Doc> {
  return {
    '/': {
      get: {
        operationId: 'index',
        security: [{}],
        tags: ['service'],
        summary: 'Playground (HTML) or the list of routes (JSON)',
        description: 'Browsers (Accept: text/html) get the web playground; other clients get the route list as JSON.',
        responses: {
          '200': {
            description: 'The playground page, or the route list.',
            content: {
              'text/html': { schema: { type: 'string' } },
              'application/json': { schema: { $ref: '#/components/schemas/RouteList' } },
            },
          },
        },
      },
    },
    '/docs': {
      get: {
        operationId: 'docs',
        security: [{}],
        tags: ['service'],
        summary: 'Interactive API docs (Swagger UI, served by the service itself)',
        responses: { '301': { description: 'To /docs/, the page.' } },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        security: [{}],
        tags: ['service'],
        summary: 'This document',
        responses: { '200': { description: 'The OpenAPI 3.1 document.', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
  };
}

/** The playground, the route list, /docs and /openapi.json, serving `openapi` (the whole service's document). */
export function docsRouter(resources: readonly AnyResource[], openapi: Doc): Router {
  const router = express.Router({ strict: true });
  const routes = ['/ping', ...resources.map((r) => `/${r.name}`)];

  router.get('/', (req: Request, res: Response) => {
    res.vary('Accept');
    if (req.accepts(['json', 'html']) === 'html') return send(res, 'html', playgroundHtml());
    res.json({ name: 'cvserve', routes, docs: '/docs', openapi: '/openapi.json' });
  });
  router.get('/openapi.json', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.json(openapi);
  });

  // Relative asset links need the trailing slash: /docs → /docs/ (relative, so it survives a path prefix).
  router.get('/docs', (_req, res) => res.redirect(301, 'docs/'));
  router.get('/docs/', (_req, res) => send(res, 'html', docsHtml()));
  router.get('/docs/swagger-initializer.js', (_req, res) => send(res, 'js', docsInitializerJs()));
  router.get('/docs/cvserve.css', (_req, res) => send(res, 'css', docsCss()));
  router.get('/docs/:file', (req, res, next) => {
    const file = String(req.params.file);
    if (!SWAGGER_FILES.has(file)) return next(new AppError('NOT_FOUND'));
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.sendFile(path.join(swaggerDir, file), (err) => err && next(err));
  });

  router.get('/playground/playground.css', (_req, res) => send(res, 'css', playgroundCss()));
  // Sample photos from data/ (an allow-list; under /playground/ so they are public with the page when keys are on).
  router.get('/playground/samples.json', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.json(availableSamples().map((s) => ({ ...s, url: `playground/samples/${s.file}` })));
  });
  router.get('/playground/samples/:file', (req, res, next) => {
    const file = samplePath(String(req.params.file));
    if (!file) return next(new AppError('NOT_FOUND'));
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.sendFile(file, { dotfiles: 'deny' }, (err) => err && next(new AppError('NOT_FOUND')));
  });
  const module = (name: string) => (_req: Request, res: Response, next: (err?: unknown) => void) => {
    browserModule(name).then((js) => send(res, 'js', js), next);
  };
  router.get('/playground/client.js', module('client.js'));
  router.get('/playground/web/:file', (req, res, next) => {
    const name = `web/${String(req.params.file)}`;
    if (!BROWSER_MODULES.has(name)) return next(new AppError('NOT_FOUND'));
    module(name)(req, res, next);
  });
  return router;
}
