/**
 * docker-compose.yml: valid by the Compose specification's schema and clean by dclint's rules,
 * and in step with the app and the image (settings, port, model volume, drain, CPU).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DCLinter } from 'dclint';
import { parse as parseYaml } from 'yaml';
import { loadConfig, SETTINGS } from '../../src/config.js';
import { REPO_ROOT } from '../helpers/paths.js';

const FILE = path.join(REPO_ROOT, 'docker-compose.yml');
const text = readFileSync(FILE, 'utf8');

interface ComposeService {
  build?: { context: string; args?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  cpus?: number;
  stop_grace_period?: string;
}
const compose = parseYaml(text) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
const { cvserve, models } = compose.services as { cvserve: ComposeService; models: ComposeService };

function lint(file: string): string[] {
  const linter = new DCLinter({ rules: {}, quiet: false, debug: false, exclude: [] });
  // dclint's declaration files do not resolve under NodeNext: name the shape used here.
  const results = linter.lintFiles([file], false) as { messages: { type: string; rule: string; line: number; message: string }[] }[];
  return results.flatMap((r) => r.messages.map((m) => `${m.type} ${m.rule} line ${m.line}: ${m.message}`));
}

function seconds(duration: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(duration);
  assert.ok(m, `duration ${duration}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2] as 'ms' | 's' | 'm'];
}

describe('docker-compose.yml', () => {
  it('passes dclint (the Compose schema and its rules) with no message', () => {
    assert.deepEqual(lint(FILE), []);
  });

  it('dclint does reject a file that breaks the Compose schema', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-compose-'));
    try {
      const broken = path.join(dir, 'docker-compose.yml');
      writeFileSync(broken, text.replace('    cpus: 2\n', '    cpus: 2\n    memory_limit: 1g\n'));
      const messages = lint(broken);
      assert.ok(messages.some((m) => /^error invalid-schema .*\/services\/cvserve.*additional properties/.test(m)), messages.join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sets only settings the app knows, with values it accepts', () => {
    const known = new Set<string>(Object.values(SETTINGS).map((s) => s.env));
    for (const service of [cvserve, models]) {
      const env = service.environment ?? {};
      assert.deepEqual(Object.keys(env).filter((k) => !known.has(k)), []);
      loadConfig(env);
    }
  });

  it('publishes the app port on loopback; the drain fits in the stop grace period; workers fit the CPUs', () => {
    const config = loadConfig(cvserve.environment);
    assert.deepEqual(cvserve.ports, [`127.0.0.1:${SETTINGS.port.default}:${config.port}`]);
    assert.ok(seconds(cvserve.stop_grace_period!) * 1000 > config.shutdownTimeoutMs);
    assert.ok(config.opencvWorkers <= cvserve.cpus!);
    assert.ok(config.onnxWorkers * config.onnxThreads <= cvserve.cpus!);
  });

  it('models: fetched once into the named volume by the project command, read-only for the server', () => {
    const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
    for (const service of [cvserve, models]) {
      assert.equal(service.build?.args?.FETCH_MODELS, 'false');
      assert.match(dockerfile, /^ARG FETCH_MODELS=/m);
      assert.equal(service.read_only, true);
      assert.ok(service.tmpfs?.some((t) => t.split(':')[0] === '/tmp'));
      assert.deepEqual(service.cap_drop, ['ALL']);
    }
    assert.deepEqual(models.command, ['node', 'dist/src/cli.js', 'models']);
    const dir = loadConfig(models.environment).modelsDir;
    assert.equal(loadConfig(cvserve.environment).modelsDir, dir);
    assert.deepEqual(models.volumes, [`models:${dir}`]);
    assert.deepEqual(cvserve.volumes, [`models:${dir}:ro`, 'faces:/data']);
    assert.ok('models' in compose.volumes);
    // The face gallery, writable, in a named volume at the image's CVSERVE_DATA_DIR (the root filesystem is read-only).
    assert.match(dockerfile, /CVSERVE_DATA_DIR=\/data\b/);
    assert.ok('faces' in compose.volumes);
    assert.equal(loadConfig(cvserve.environment).modelsFetch, false);
    assert.deepEqual(cvserve.depends_on, { models: { condition: 'service_completed_successfully' } });
  });
});
