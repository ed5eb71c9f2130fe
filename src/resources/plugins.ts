import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import sharp from 'sharp';
import { z } from 'zod';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { drawBoxes } from '../image/draw.js';
import { encodeImage } from '../image/encode.js';
import type { AnyResource, InitContext, ResourceStatus } from './contract.js';
import { describeParams, outputSchema } from './describe.js';
import { drawParam, formatParam, param } from './params.js';

/**
 * Plugin resources: every `.js`/`.mjs` module in CVSERVE_PLUGINS_DIR whose default export is a
 * resource (same contract as the built-ins) becomes a route with validation, OpenAPI entry,
 * playground form, CLI access, logging and metrics. A plugin cannot import cvserve's TypeScript or
 * its dependencies from its own directory, so it gets what it needs in a kit:
 *
 *   export default function ({ z, param, sharp }) { return { name: 'x', summary, params: z.strictObject({...}), output, run } }
 *
 * The default export may be a resource object, a factory `(kit) => resource` (may be async), or a
 * class (`new Plugin(kit)`). init, status and close are optional. A module that fails to load or
 * whose export does not satisfy the contract is logged and skipped: it never stops the service.
 */

/** What every plugin gets: cvserve's own zod (its schemas must come from it), parameter builders and image tools. */
export interface PluginKit {
  z: typeof z;
  param: typeof param;
  formatParam: typeof formatParam;
  drawParam: typeof drawParam;
  sharp: typeof sharp;
  AppError: typeof AppError;
  encodeImage: typeof encodeImage;
  drawBoxes: typeof drawBoxes;
}

/** Route names the service uses itself. */
export const RESERVED_NAMES = new Set(['ping', 'docs', 'playground', 'healthz', 'readyz', 'metrics', 'openapi']);
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const PLUGIN_FILE = /\.(m?js)$/;

type Candidate = Partial<Omit<AnyResource, 'output' | 'params' | 'methods'>> & { output?: unknown; params?: unknown; methods?: unknown };

class PluginError extends Error {}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new PluginError(message);
}

/** Checks a plugin's export against the contract; returns a resource with the optional lifecycle filled in. */
export function validatePluginResource(candidate: unknown, taken: ReadonlySet<string>): AnyResource {
  check(typeof candidate === 'object' && candidate !== null, 'the default export did not give a resource object');
  const r = candidate as Candidate;
  check(typeof r.name === 'string' && NAME.test(r.name), `name ${JSON.stringify(r.name)} must be lowercase letters, digits and dashes`);
  check(!RESERVED_NAMES.has(r.name), `name "${r.name}" is reserved by the service`);
  check(!taken.has(r.name), `the route /${r.name} already exists`);
  check(typeof r.summary === 'string' && r.summary.trim() !== '', 'summary must be a non-empty string');
  check(r.description === undefined || typeof r.description === 'string', 'description must be a string');
  check(r.params instanceof z.ZodObject, 'params must be a zod object made with the kit\'s z (z.strictObject({...}))');
  const output = r.output as { kind?: unknown; schema?: unknown } | undefined;
  check(output?.kind === 'image' || (output?.kind === 'json' && output.schema instanceof z.ZodType), 'output must be { kind: "image" } or { kind: "json", schema: <zod schema> }');
  check(
    r.methods === undefined || (Array.isArray(r.methods) && r.methods.length > 0 && r.methods.every((m) => m === 'GET' || m === 'POST')),
    'methods must be a non-empty list of "GET" and "POST"',
  );
  check(typeof r.run === 'function', 'run(input, params, ctx) must be a function');
  for (const hook of ['init', 'status', 'close'] as const) check(r[hook] === undefined || typeof r[hook] === 'function', `${hook} must be a function`);
  // The declaration must be describable: the OpenAPI document and the playground are built from it.
  try {
    describeParams(r.params);
    if (output.kind === 'json') outputSchema(output.schema as z.ZodType);
  } catch (err) {
    throw new PluginError(`its schemas cannot be described as JSON Schema: ${(err as Error).message}`);
  }

  let initError: string | undefined;
  return {
    name: r.name,
    summary: r.summary,
    description: r.description,
    params: r.params,
    output: r.output as AnyResource['output'],
    methods: r.methods as AnyResource['methods'],
    async init(ctx: InitContext) {
      try {
        await r.init?.call(r, ctx);
      } catch (err) {
        initError = (err as Error)?.message ?? String(err);
        throw err;
      }
    },
    status(): ResourceStatus {
      if (r.status) return r.status.call(r);
      return initError === undefined ? { ready: true } : { ready: false, reason: `plugin failed to initialise: ${initError}` };
    },
    run: (input, params, ctx) => r.run!.call(r, input, params, ctx),
    close: async () => {
      await r.close?.call(r);
    },
  };
}

function isClass(fn: Function): boolean {
  return /^class[\s{]/.test(Function.prototype.toString.call(fn)) || typeof (fn.prototype as { run?: unknown } | undefined)?.run === 'function';
}

async function instantiate(exported: unknown, kit: PluginKit): Promise<unknown> {
  if (typeof exported !== 'function') return exported;
  if (isClass(exported)) return new (exported as new (kit: PluginKit) => unknown)(kit);
  return (exported as (kit: PluginKit) => unknown)(kit);
}

/** Settings reach a plugin through init(ctx), like every resource. */
export function pluginKit(): PluginKit {
  return { z, param, formatParam, drawParam, sharp, AppError, encodeImage, drawBoxes };
}

/**
 * Loads every plugin in `dir` (sorted by file name). `taken` holds the names already in use.
 * Failures are logged with the file and the reason, and skipped.
 */
export async function loadPlugins(dir: string, options: { log: Logger; taken?: Iterable<string> }): Promise<AnyResource[]> {
  const { log } = options;
  const taken = new Set(options.taken);
  let files: string[];
  try {
    files = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && PLUGIN_FILE.test(e.name)).map((e) => e.name).sort();
  } catch (err) {
    log.error({ err, dir }, `plugins directory ${dir} cannot be read: no plugins loaded`);
    return [];
  }
  const kit = pluginKit();
  const loaded: AnyResource[] = [];
  for (const name of files) {
    const file = path.resolve(dir, name);
    try {
      const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
      check('default' in module && module.default !== undefined, 'it has no default export');
      const resource = validatePluginResource(await instantiate(module.default, kit), taken);
      taken.add(resource.name);
      loaded.push(resource);
      log.info({ plugin: file, route: `/${resource.name}` }, `plugin ${name} loaded: /${resource.name}`);
    } catch (err) {
      const reason = err instanceof PluginError ? err.message : `${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`;
      log.error({ plugin: file, reason }, `plugin ${name} skipped: ${reason}`);
    }
  }
  return loaded;
}

/** The built-ins plus the plugins of `config.pluginsDir` (none when it is empty). */
export async function withPlugins(builtins: AnyResource[], config: Config, log: Logger): Promise<AnyResource[]> {
  if (!config.pluginsDir) return builtins;
  return [...builtins, ...(await loadPlugins(config.pluginsDir, { log, taken: builtins.map((r) => r.name) }))];
}
