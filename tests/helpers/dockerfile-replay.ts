import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DockerfileParser, type Copy, type Env, type Healthcheck, type Instruction, type ModifiableInstruction } from 'dockerfile-ast';

/**
 * Replays a Dockerfile without Docker: every stage gets a directory that stands for its
 * filesystem root; COPY copies from the build context or from another stage's directory, RUN runs
 * its shell command in the stage's working directory with the stage's ENV and ARGs, and the last
 * stage's CMD, ENV, USER, EXPOSE, STOPSIGNAL and HEALTHCHECK are returned for the caller to start.
 *
 * Absolute paths in WORKDIR, COPY and ENV values are mapped under the stage's directory, so RUN
 * commands must use relative paths or those variables (checked: a RUN with an absolute path is
 * refused). The base image is stood in for by this machine's node and npm; a FROM of any other
 * base image, or an instruction not listed here, is refused rather than skipped.
 */

export interface ReplayOptions {
  dockerfile: string;
  /** The build context (already filtered by .dockerignore). */
  context: string;
  /** Where the stage directories go. */
  workDir: string;
  buildArgs?: Record<string, string>;
  /** Environment given to every RUN on top of the stage's (e.g. PATH, HOME for the npm cache). */
  hostEnv: NodeJS.ProcessEnv;
  /** Base images the replay may stand in for with this machine's node. */
  baseImages: readonly string[];
  /** Time limit for one RUN. */
  runTimeoutMs?: number;
  /** Called before each RUN (progress output). */
  onRun?: (stage: string, command: string) => void;
}

export interface ReplayStage {
  name: string;
  /** The directory standing for this stage's "/". */
  root: string;
  /** The working directory, as the image sees it (e.g. /app). */
  workdir: string;
  /** ENV as the image sees it (paths not mapped). */
  env: Record<string, string>;
  args: Record<string, string>;
  user?: string;
  expose: string[];
  stopSignal?: string;
  healthcheck?: { flags: Record<string, string>; command: string[] };
  cmd?: string[];
  entrypoint?: boolean;
  /** Every RUN command that was run, in order, after ARG expansion by the shell. */
  runs: string[];
}

export interface ReplayResult {
  stages: ReplayStage[];
  final: ReplayStage;
  /** Maps an image path (e.g. /models) to where it is in the replay. */
  hostPath(stage: ReplayStage, imagePath: string): string;
  /** The stage's ENV with image paths mapped to the replay (what a process there must see). */
  mappedEnv(stage: ReplayStage): Record<string, string>;
}

const ABSOLUTE_IN_SHELL = /(^|[\s=:'"])\/[A-Za-z]/;

export async function replayDockerfile(options: ReplayOptions): Promise<ReplayResult> {
  const text = readFileSync(options.dockerfile, 'utf8');
  const dockerfile = DockerfileParser.parse(text);
  const globalArgs: Record<string, string> = {};
  for (const arg of dockerfile.getInitialARGs()) {
    const prop = arg.getProperty();
    if (!prop) continue;
    globalArgs[prop.getName()] = options.buildArgs?.[prop.getName()] ?? prop.getValue() ?? '';
  }

  const stages: ReplayStage[] = [];
  let stage: ReplayStage | undefined;
  const hostPath = (s: ReplayStage, imagePath: string) => path.join(s.root, path.posix.resolve(s.workdir, imagePath));
  const mapValue = (s: ReplayStage, value: string) => (value.startsWith('/') && !value.includes(':') ? hostPath(s, value) : value);
  const mappedEnv = (s: ReplayStage) => Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, mapValue(s, v)]));
  const expand = (value: string, vars: Record<string, string>) =>
    value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? '');

  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    if (keyword === 'ARG' && !stage) continue;
    if (keyword === 'FROM') {
      const args = instruction.getArguments().map((a) => a.getValue());
      const image = expand(args[0]!, globalArgs);
      const name = args[1]?.toUpperCase() === 'AS' ? args[2]! : `stage${stages.length}`;
      const root = path.join(options.workDir, name);
      const parent = stages.find((s) => s.name === image);
      if (parent) {
        copyTree(parent.root, root);
        stage = { ...structuredClone(parent), name, root, expose: [], runs: [], cmd: undefined, healthcheck: undefined, stopSignal: undefined };
      } else {
        if (!options.baseImages.includes(image)) throw new Error(`FROM ${image}: the replay stands in only for ${options.baseImages.join(', ')}`);
        mkdirSync(root, { recursive: true });
        stage = { name, root, workdir: '/', env: {}, args: {}, expose: [], runs: [] };
      }
      chmodSync(root, 0o755);
      stages.push(stage);
      continue;
    }
    if (!stage) throw new Error(`${keyword} before FROM`);
    const s: ReplayStage = stage;
    const vars = () => ({ ...globalArgs, ...s.args, ...s.env });
    switch (keyword) {
      case 'ARG': {
        for (const arg of instruction.getArguments()) {
          const [name, ...rest] = arg.getValue().split('=');
          s.args[name!] = options.buildArgs?.[name!] ?? (rest.length ? rest.join('=') : (globalArgs[name!] ?? ''));
        }
        break;
      }
      case 'ENV':
        for (const prop of (instruction as Env).getProperties()) s.env[prop.getName()] = expand(prop.getValue() ?? '', vars());
        break;
      case 'WORKDIR':
        s.workdir = path.posix.resolve(s.workdir, expand(instruction.getArgumentsContent() ?? '/', vars()));
        mkdirSync(hostPath(s, s.workdir), { recursive: true });
        break;
      case 'COPY':
        replayCopy(instruction as Copy, s, stages, options.context, hostPath);
        break;
      case 'RUN': {
        if ((instruction as ModifiableInstruction).getFlags().length) throw new Error(`RUN flags are not replayed: ${instruction.toString()}`);
        const command = instruction.getArgumentsContent() ?? '';
        if (ABSOLUTE_IN_SHELL.test(command)) throw new Error(`RUN uses an absolute path; use an ENV variable instead: ${command}`);
        options.onRun?.(s.name, command);
        // As in Docker: the stage's own ARGs and its ENV (which wins), not the global ARGs.
        const env = { ...options.hostEnv, ...s.args, ...mappedEnv(s) };
        // Asynchronously: a RUN may talk to a server in this process (the test's model mirror).
        await runShell(command, hostPath(s, s.workdir), env, options.runTimeoutMs ?? 600_000, s.name);
        s.runs.push(command);
        break;
      }
      case 'USER':
        s.user = instruction.getArgumentsContent() ?? undefined;
        break;
      case 'EXPOSE':
        s.expose.push(...instruction.getArguments().map((a) => a.getValue()));
        break;
      case 'STOPSIGNAL':
        s.stopSignal = instruction.getArgumentsContent() ?? undefined;
        break;
      case 'HEALTHCHECK': {
        const hc = instruction as Healthcheck;
        const flags = Object.fromEntries(hc.getFlags().map((f) => [f.getName(), f.getValue() ?? '']));
        const content = instruction.getArgumentsContent() ?? '';
        const json = content.replace(/^.*?\bCMD\s+/s, '');
        s.healthcheck = { flags, command: parseExecForm(json, 'HEALTHCHECK CMD') };
        break;
      }
      case 'CMD':
        s.cmd = parseExecForm(instruction.getArgumentsContent() ?? '', 'CMD');
        break;
      default:
        throw new Error(`${keyword} is not replayed; teach tests/helpers/dockerfile-replay.ts what it means first`);
    }
  }
  if (!stage) throw new Error('no FROM in the Dockerfile');
  return { stages, final: stage, hostPath, mappedEnv };
}

function runShell(command: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number, stage: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (chunk: Buffer) => {
      out = (out + chunk.toString()).slice(-6000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`RUN ${command} (stage ${stage}) failed with ${code ?? signal}:\n${out}`));
    });
  });
}

/** CMD/HEALTHCHECK must be in exec form (a JSON array): no shell in between, so signals reach node. */
function parseExecForm(text: string, what: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${what} is not in exec form (a JSON array): ${text}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) throw new Error(`${what} is not an array of strings`);
  return parsed;
}

function replayCopy(instruction: Copy, s: ReplayStage, stages: ReplayStage[], context: string, hostPath: (s: ReplayStage, p: string) => string) {
  const flags = Object.fromEntries(instruction.getFlags().map((f) => [f.getName(), f.getValue() ?? '']));
  for (const name of Object.keys(flags)) if (name !== 'from' && name !== 'chown') throw new Error(`COPY --${name} is not replayed`);
  const args = instruction.getArguments().map((a) => a.getValue());
  const dest = args.pop()!;
  const from = flags.from !== undefined ? stages.find((x) => x.name === flags.from) : undefined;
  if (flags.from !== undefined && !from) throw new Error(`COPY --from=${flags.from}: no such stage`);
  const destPath = hostPath(s, dest);
  const intoDir = dest.endsWith('/') || args.length > 1;
  for (const src of args) {
    const srcPath = from ? hostPath(from, src) : path.join(context, src);
    if (!existsSync(srcPath)) throw new Error(`COPY ${src}: not in the ${from ? `stage ${from.name}` : 'build context'}`);
    const target = statSync(srcPath).isDirectory() || !intoDir ? destPath : path.join(destPath, path.basename(src));
    mkdirSync(statSync(srcPath).isDirectory() ? target : path.dirname(target), { recursive: true });
    copyTree(srcPath, target);
    if (flags.chown && process.getuid?.() === 0) chownTree(target, flags.chown);
  }
}

/** cp -a: fast for node_modules, keeps modes; a directory's contents go into `to`. */
function copyTree(from: string, to: string) {
  if (statSync(from).isDirectory()) {
    mkdirSync(to, { recursive: true });
    const r = spawnSync('cp', ['-a', `${from}/.`, to], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cp -a ${from} ${to}: ${r.stderr}`);
  } else {
    cpSync(from, to, { preserveTimestamps: true });
  }
}

function chownTree(target: string, spec: string) {
  const [uid, gid] = spec.split(':').map(Number);
  if (!Number.isInteger(uid)) throw new Error(`COPY --chown=${spec}: the replay needs numeric ids`);
  const r = spawnSync('chown', ['-R', `${uid}:${gid ?? uid}`, target]);
  if (r.status !== 0) chownSync(target, uid!, gid ?? uid!);
}

/** Parses "uid[:gid]" (numbers only: names cannot be checked for non-root by Kubernetes). */
export function numericUser(user: string | undefined): { uid: number; gid: number } | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(user ?? '');
  return m ? { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) } : undefined;
}

export type { Instruction };
