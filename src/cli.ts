#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node
import { realpathSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';
import { AppError, errorBody } from './errors.js';
import type { AnyResource } from './resources/contract.js';

/**
 * `cvserve`: start the service, run one resource without HTTP (the same resource objects and the
 * same answer formatting as the route, so the JSON printed is byte for byte the route's), print the
 * OpenAPI document, fetch the models. Exit codes: 0 done, 1 the work failed, 2 wrong usage.
 */

export const USAGE = `cvserve: computer vision over HTTP, and the same resources from the command line.

Usage:
  cvserve serve
      Start the HTTP service. Settings come from the environment (PORT, CVSERVE_MODELS_DIR, ...; see README).
  cvserve run <route> <file|url> [--<param> <value> ...] [--out <file>] [--json] [--accept <type>]
      Run one resource here, without HTTP, and print exactly the JSON its route answers,
      or write the image it answers (to --out, or to stdout when that is not a terminal).
        --out <file>      write an image answer to <file>
        --json            answer as for Accept: application/json (images as {"imageBase64","format"})
        --accept <type>   answer as for this Accept header, e.g. image/png (draws detection boxes)
  cvserve routes [<route>]
      List the routes, or one route's parameters with their defaults and bounds.
  cvserve openapi
      Print the OpenAPI 3.1 document.
  cvserve models [--check] [--base-url <url>] [--only <file,...>]
      Download every file in the model manifest into CVSERVE_MODELS_DIR and verify its sha256
      (--check: only verify what is there).
  cvserve help
      This text.

Examples:
  cvserve run detect group.jpg --minNeighbors 6
  cvserve run canny photo.jpg --threshold1 50 --out edges.jpg
  CVSERVE_PLUGINS_DIR=examples/plugins cvserve run histogram photo.jpg --format json

Exit status: 0 success, 1 the request or command failed (error JSON on stdout, message on stderr), 2 wrong usage.`;

/** Wrong usage of the command line: the message, then the usage text. */
class UsageError extends Error {}
/** A command given correctly that cannot be done as asked (no such file, no such route): the message alone. */
class CliError extends Error {}

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

interface RunArgs {
  route: string;
  source: string;
  params: Record<string, string>;
  out?: string;
  accept: string;
}

/** `run`'s arguments: the route, the image, then --name value / --name=value pairs. */
export function parseRunArgs(args: string[]): RunArgs {
  const positional: string[] = [];
  const params: Record<string, string> = {};
  let out: string | undefined;
  let accept = '';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (name === 'json') {
      if (eq !== -1) throw new UsageError('--json takes no value');
      accept = 'application/json';
      continue;
    }
    let value: string | undefined = eq === -1 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (!/^[A-Za-z][\w-]*$/.test(name)) throw new UsageError(`not an option: ${arg}`);
    if (name === 'out') out = value;
    else if (name === 'accept') accept = value;
    else {
      if (name in params) throw new UsageError(`--${name} was given more than once`);
      params[name] = value;
    }
  }
  if (positional.length !== 2) throw new UsageError(`run needs a route and an image (file or URL), got ${positional.length} argument${positional.length === 1 ? '' : 's'}`);
  return { route: positional[0]!.replace(/^\/+/, ''), source: positional[1]!, params, out, accept };
}

/** A logger on stderr: stdout carries the answer. Quiet unless LOG_LEVEL asks for more. */
function cliLogger(env: NodeJS.ProcessEnv, config: Config): Logger {
  return pino({ level: env.LOG_LEVEL ? config.logLevel : 'warn' }, pino.destination({ dest: 2, sync: true }));
}

// The engines, models and server modules load only for the commands that use them: help and usage errors stay fast.
async function resourcesFor(config: Config, log: Logger): Promise<AnyResource[]> {
  const [{ withPlugins }, { builtinResources }, { defineAll }] = await Promise.all([
    import('./resources/plugins.js'),
    import('./resources/registry.js'),
    import('./resources/define.js'),
  ]);
  return defineAll(await withPlugins(builtinResources(), config, log));
}

const isUrl = (source: string) => /^https?:\/\//i.test(source);

async function readImageFile(file: string, config: Config): Promise<Buffer> {
  const info = await stat(file);
  if (info.size > config.maxBodyBytes) throw new AppError('PAYLOAD_TOO_LARGE', { publicMessage: `${file} is ${info.size} bytes; the limit is ${config.maxBodyBytes}` });
  return readFile(file);
}

function write(stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => stream.write(data, (err) => (err ? reject(err) : resolve())));
}

/** A one-line progress bar on a terminal's stderr, redrawn in place; nothing when stderr is not a terminal. */
function progressBar(stderr: CliIo['stderr'], label: string): { update(done: number, total: number): void; end(): void } {
  if (!stderr.isTTY) return { update() {}, end() {} };
  let drawn = false;
  return {
    update(done, total) {
      const width = 30;
      const filled = total > 0 ? Math.round((done / total) * width) : 0;
      stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
      drawn = true;
    },
    end() {
      if (drawn) stderr.write('\n');
    },
  };
}

async function runCommand(args: string[], io: CliIo, config: Config): Promise<number> {
  const a = parseRunArgs(args);
  if (!isUrl(a.source) && !(await stat(a.source).catch(() => undefined))?.isFile()) throw new CliError(`no such file: ${a.source}`);
  const log = cliLogger(io.env, config);
  const resources = await resourcesFor(config, log);
  const resource = resources.find((r) => r.name === a.route);
  if (!resource) throw new CliError(`no route /${a.route}; the routes are: ${resources.map((r) => r.name).join(', ')}`);

  const [{ closeServices, createServices }, { toAppError }, { createPipelineServices }, { jsonBytes }, { executeResource }, { Deadline }] = await Promise.all([
    import('./services.js'),
    import('./transport/errors.js'),
    import('./transport/pipeline-services.js'),
    import('./resources/answer.js'),
    import('./resources/pipeline.js'),
    import('./resources/deadline.js'),
  ]);
  const engines = createServices(config);
  const bar = progressBar(io.stderr, `/${resource.name}`);
  try {
    await resource.init({ config, engines, log });
    const { answer } = await executeResource(
      resource,
      {
        accept: a.accept,
        open: async () => ({
          fields: a.params,
          image: isUrl(a.source) ? { way: 'url', url: a.source } : { way: 'raw', bytes: await readImageFile(a.source, config) },
        }),
      },
      createPipelineServices(config, engines.decodeBudget),
      { deadline: new Deadline(config.requestTimeoutMs), log, progress: bar.update },
    );
    bar.end();
    if (answer.kind === 'json') {
      await write(io.stdout, jsonBytes(answer.body));
      if (io.stdout.isTTY) await write(io.stdout, '\n');
    } else if (a.out) {
      await writeFile(a.out, answer.bytes);
      await write(io.stderr, `wrote ${a.out} (${answer.format}, ${answer.bytes.length} bytes)\n`);
    } else if (io.stdout.isTTY) {
      throw new CliError(`/${resource.name} answered an image (${answer.format}): give --out <file>, pipe the output, or use --json`);
    } else {
      await write(io.stdout, answer.bytes);
    }
    return 0;
  } catch (err) {
    bar.end();
    if (err instanceof CliError) throw err;
    const appError = toAppError(err);
    if (appError.status >= 500 && appError.code !== 'MODEL_UNAVAILABLE') log.error({ err, detail: appError.detail }, 'run failed');
    await write(io.stdout, jsonBytes(errorBody(appError)));
    if (io.stdout.isTTY) await write(io.stdout, '\n');
    await write(io.stderr, `cvserve run: ${appError.status} ${appError.code}: ${appError.publicMessage}\n`);
    return 1;
  } finally {
    await resource.close().catch(() => undefined);
    await closeServices(engines);
  }
}

async function routesCommand(args: string[], io: CliIo, config: Config): Promise<number> {
  if (args.length > 1) throw new UsageError('routes takes at most one route');
  const resources = await resourcesFor(config, cliLogger(io.env, config));
  if (args.length === 0) {
    const width = Math.max(...resources.map((r) => r.name.length)) + 2;
    await write(io.stdout, resources.map((r) => `/${r.name.padEnd(width)}${r.summary}`).join('\n') + '\n');
    return 0;
  }
  const name = args[0]!.replace(/^\/+/, '');
  const resource = resources.find((r) => r.name === name);
  if (!resource) throw new CliError(`no route /${name}; the routes are: ${resources.map((r) => r.name).join(', ')}`);
  const { describeParams } = await import('./resources/describe.js');
  const lines = [`/${resource.name}: ${resource.summary}`, '', resource.description ?? '', '', 'Parameters:'];
  for (const p of describeParams(resource.params)) {
    const s = p.schema as { type?: unknown; enum?: unknown[]; default?: unknown; minimum?: number; maximum?: number };
    const type = s.enum ? s.enum.join('|') : String(s.type ?? 'value');
    const facts = [s.default !== undefined ? `default ${JSON.stringify(s.default)}` : '', s.minimum !== undefined || s.maximum !== undefined ? `${s.minimum ?? ''}..${s.maximum ?? ''}` : '']
      .filter(Boolean)
      .join(', ');
    lines.push(`  --${p.name} <${type}>${facts ? `  (${facts})` : ''}`, `      ${p.description}`);
  }
  await write(io.stdout, lines.join('\n') + '\n');
  return 0;
}

async function modelsCommand(args: string[], io: CliIo, config: Config): Promise<number> {
  let checkOnly = false;
  let baseUrl = config.modelsBaseUrl || undefined;
  let files: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--check') checkOnly = true;
    else if (arg === '--base-url' && args[i + 1]) baseUrl = args[++i];
    else if (arg === '--only' && args[i + 1]) files = args[++i]!.split(',').map((s) => s.trim()).filter(Boolean);
    else throw new UsageError(`models: unknown argument ${arg}`);
  }
  const { fetchModels, formatReport } = await import('./models/fetch.js');
  const report = await fetchModels({
    dir: config.modelsDir,
    manifestFile: config.modelsManifest || undefined,
    baseUrl,
    files,
    checkOnly,
    timeoutMs: config.modelsFetchTimeoutMs,
  });
  await write(io.stdout, formatReport(report) + '\n');
  return report.failed.length ? 1 : 0;
}

/** Runs the command line; resolves to the exit status (`serve` resolves only when the server stops). */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'help' || command === '--help' || command === '-h') {
      await write(io.stdout, USAGE + '\n');
      return 0;
    }
    if (command === 'serve') {
      if (rest.length) throw new UsageError('serve takes no arguments: configure it with environment variables');
      await (await import('./run.js')).runServer();
      return new Promise<number>(() => undefined); // runs until a signal stops the process
    }
    if (command !== 'run' && command !== 'openapi' && command !== 'models' && command !== 'routes') {
      throw new UsageError(command === undefined ? 'no command given' : `unknown command: ${command}`);
    }
    const config = loadConfig(io.env);
    // One run cannot wait for a download: a missing model answers 503 naming `cvserve models` at once.
    if (command === 'run') return await runCommand(rest, io, { ...config, modelsFetch: false });
    if (command === 'routes') return await routesCommand(rest, io, config);
    if (command === 'models') return await modelsCommand(rest, io, config);
    if (rest.length) throw new UsageError('openapi takes no arguments');
    const [{ serviceOpenApi }, { loadApiKeys }, { loadManifest, manifestPath }] = await Promise.all([
      import('./openapi-document.js'),
      import('./transport/keys.js'),
      import('./models/manifest.js'),
    ]);
    const resources = await resourcesFor(config, cliLogger(io.env, config));
    const manifest = loadManifest(manifestPath(config.modelsManifest));
    const doc = serviceOpenApi(resources, { apiKeys: loadApiKeys(config).length > 0, manifest });
    await write(io.stdout, JSON.stringify(doc, null, 2) + '\n');
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      await write(io.stderr, `cvserve: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof CliError) {
      await write(io.stderr, `cvserve: ${err.message} (cvserve help: usage)\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      await write(io.stderr, `cvserve: ${err.message}\n`);
      return 2;
    }
    await write(io.stderr, `cvserve: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}

/** True when this file is the program (node dist/src/cli.js, the npm bin link, tsx src/cli.ts), not an import. */
function isMain(): boolean {
  try {
    return !!process.argv[1] && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
