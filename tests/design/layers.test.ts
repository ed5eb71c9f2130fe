import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import { REPO_ROOT } from '../helpers/paths.js';

const config = createRequire(import.meta.url)(path.join(REPO_ROOT, '.dependency-cruiser.cjs')) as IConfiguration;

/** The rule violations of the TypeScript tree under `baseDir`/src, as short lines. */
async function violations(baseDir: string, tsConfig?: string): Promise<string[]> {
  const options = { ...config.options, ...(tsConfig ? { tsConfig: { fileName: tsConfig } } : { tsConfig: undefined }) };
  const { output } = await cruise(['src'], { ...options, validate: true, ruleSet: { forbidden: config.forbidden }, baseDir });
  const result = output as ICruiseResult;
  return result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (${v.cycle.map((c) => c.name).join(' → ')})` : ''}`);
}

/** A scratch tree of `files` (path → text) in a new temp dir. */
async function scratchTree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cvserve-layers-'));
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }
  return dir;
}

describe('the layering (README "Design"), checked by dependency-cruiser', () => {
  it('src/ has no import cycle and no import that runs up the layers', async () => {
    const found = await violations(REPO_ROOT, 'tsconfig.json');
    assert.deepEqual(found, []);
  });

  describe('the rules bite', () => {
    const dirs: string[] = [];
    after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

    it('a cycle, an engine importing a transport, a resource importing HTTP and a model reaching resources are each refused', async () => {
      const files: Record<string, string> = {
        'src/image/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
        'src/image/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
        'src/http/errors.ts': 'export const toAppError = 1;\n',
        'src/engines/opencv/engine.ts': "import { toAppError } from '../../http/errors.js';\nexport const e = toAppError;\n",
        'src/resources/canny.ts': "import { toAppError } from '../http/errors.js';\nexport const c = toAppError;\n",
        'src/models/store.ts': "import { c } from '../resources/canny.js';\nexport const s = c;\n",
        'src/resources/fine.ts': "import { s } from '../models/store.js';\nexport const f = s;\n",
      };
      const dir = await scratchTree(files);
      dirs.push(dir);
      const found = await violations(dir);
      const rules = new Set(found.map((v) => v.split(':')[0]));
      assert.deepEqual([...rules].sort(), ['engines-below-resources', 'models-below-engines-and-resources', 'no-cycles', 'resources-know-no-transport'], found.join('\n'));
      assert.ok(!found.some((v) => v.includes('src/resources/fine.ts')), 'a resource importing a model store is allowed');
    });

    it('an engine importing the face service, a transport importing another, and a resource importing the fetcher are each refused', async () => {
      const files: Record<string, string> = {
        'src/faces/service.ts': 'export const faces = 1;\n',
        'src/engines/engines.ts': "import { faces } from '../faces/service.js';\nexport const e = faces;\n",
        'src/http/errors.ts': 'export const toAppError = 1;\n',
        'src/deepstack/router.ts': "import { toAppError } from '../http/errors.js';\nexport const r = toAppError;\n",
        'src/cli.ts': "import { r } from './deepstack/router.js';\nexport const c = r;\n",
        'src/fetch/url-fetch.ts': 'export const fetchUrl = 1;\n',
        'src/resources/canny.ts': "import { fetchUrl } from '../fetch/url-fetch.js';\nexport const c = fetchUrl;\n",
        'src/transport/execute.ts': "import { fetchUrl } from '../fetch/url-fetch.js';\nexport const x = fetchUrl;\n",
      };
      const scratch = await scratchTree(files);
      dirs.push(scratch);
      const found = await violations(scratch);
      const rules = new Set(found.map((v) => v.split(':')[0]));
      assert.deepEqual([...rules].sort(), ['cli-beside-http', 'dialect-beside-http', 'engines-below-resources', 'resources-do-not-fetch'], found.join('\n'));
      assert.ok(!found.some((v) => v.includes('src/transport/execute.ts')), 'the transport adapter may use the fetcher');
    });
  });
});
