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
import type { AnyResource } from './contract.js';
import { checkDeclaration, ContractError, type ResourceDeclaration } from './define.js';
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

const PLUGIN_FILE = /\.(m?js)$/;

class PluginError extends Error {}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new PluginError(message);
}

/** Checks a plugin's export against the contract: the same checks as every resource (defineResource runs them again when the app defines it). */
export function validatePluginResource(candidate: unknown, taken: ReadonlySet<string>): ResourceDeclaration<z.ZodObject> {
  try {
    checkDeclaration(candidate, taken);
    return candidate;
  } catch (err) {
    if (err instanceof ContractError) throw new PluginError(err.message === 'a resource must be an object' ? 'the default export did not give a resource object' : err.message);
    throw err;
  }
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
export async function loadPlugins(dir: string, options: { log: Logger; taken?: Iterable<string> }): Promise<ResourceDeclaration<z.ZodObject>[]> {
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
  const loaded: ResourceDeclaration<z.ZodObject>[] = [];
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
export async function withPlugins(builtins: ResourceDeclaration<z.ZodObject>[], config: Config, log: Logger): Promise<ResourceDeclaration<z.ZodObject>[]> {
  if (!config.pluginsDir) return builtins;
  return [...builtins, ...(await loadPlugins(config.pluginsDir, { log, taken: builtins.map((r) => r.name) }))];
}
