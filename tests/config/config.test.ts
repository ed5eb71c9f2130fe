import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configTable, ConfigError, loadConfig, SETTINGS } from '../../src/config.js';
import { ERRORS, errorTable } from '../../src/errors.js';
import { REPO_ROOT } from '../helpers/paths.js';

describe('config', () => {
  it('has sane defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.modelsDir, './models');
    assert.equal(c.allowPrivateNetworks, false);
    assert.ok(c.maxPixels > 1_000_000 && c.maxPixels < 16000 * 16000, 'pixel limit set below sharp’s own default');
    assert.ok(c.opencvWorkers >= 1);
  });

  it('reads and converts values', () => {
    const c = loadConfig({ PORT: '9000', CVSERVE_ALLOW_PRIVATE_NETWORKS: 'true', CVSERVE_MAX_PIXELS: '1000', LOG_LEVEL: 'debug' });
    assert.deepEqual([c.port, c.allowPrivateNetworks, c.maxPixels, c.logLevel], [9000, true, 1000, 'debug']);
  });

  it('refuses bad values, naming every bad variable', () => {
    assert.throws(
      () => loadConfig({ PORT: 'eighty', CVSERVE_ALLOW_PRIVATE_NETWORKS: 'maybe', CVSERVE_MAX_PIXELS: '-1' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.problems.length, 3);
        for (const name of ['PORT', 'CVSERVE_ALLOW_PRIVATE_NETWORKS', 'CVSERVE_MAX_PIXELS']) assert.match(err.message, new RegExp(name));
        return true;
      },
    );
  });

  it('documents every setting in the README (regenerate with npm run config:table -- --write)', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const block = readme.split('<!-- config:start -->')[1]?.split('<!-- config:end -->')[0]?.trim();
    assert.equal(block, configTable());
    for (const s of Object.values(SETTINGS)) assert.ok(block.includes(`\`${s.env}\``), `README lacks ${s.env}`);
  });

  it('documents every error code in the README (regenerate with npm run config:table -- --write)', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const block = readme.split('<!-- errors:start -->')[1]?.split('<!-- errors:end -->')[0]?.trim();
    assert.equal(block, errorTable());
    for (const [code, e] of Object.entries(ERRORS)) assert.ok(block.includes(`| ${e.status} | \`${code}\` |`), `README lacks ${code}`);
  });
});
