/**
 * What an OpenCV.js build exports, and whether it has everything cvserve calls.
 *
 *   node --import tsx scripts/opencv-js/exports.ts <dir with opencv-simd.*> <generated bindings.cpp>
 *
 * Prints JSON { exports, core, missing } and exits 1 if a name cvserve uses is missing. Used by
 * scripts/build-opencv-js.sh; usedOpenCvNames() is also checked against both builds by
 * tests/engines/opencv-builds.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOpenCv, type CV } from '../../src/engines/opencv/load.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Files whose `cv.<name>` uses the builds must satisfy: the engine, its tests, the kernel benchmarks. */
export function openCvCallers(): string[] {
  const engine = path.join(repoRoot, 'src/engines/opencv');
  const tests = path.join(repoRoot, 'tests/engines');
  return [
    ...readdirSync(engine).filter((f) => f.endsWith('.ts')).map((f) => path.join(engine, f)),
    ...readdirSync(tests).filter((f) => /^opencv-.*\.test\.ts$/.test(f)).map((f) => path.join(tests, f)),
    path.join(repoRoot, 'bench/kernels.ts'),
  ];
}

/** Every `cv.Name` used in those files (module members: functions, classes, constants, runtime helpers). */
export function usedOpenCvNames(files = openCvCallers()): string[] {
  const names = new Set<string>();
  for (const file of files) {
    for (const m of readFileSync(file, 'utf8').matchAll(/\bcv\.([A-Za-z_$][\w$]*)/g)) names.add(m[1]!);
  }
  // Not module members: a property the loader deletes, a handler the npm loader sets.
  for (const name of ['then', 'onRuntimeInitialized']) names.delete(name);
  return [...names].sort();
}

export function missingNames(cv: CV, names = usedOpenCvNames()): string[] {
  return names.filter((n) => cv[n] === undefined);
}

/** The names registered by the generated bindings: whitelisted functions and Class.method, and the core bindings' classes. */
export function bindingNames(bindingsCpp: string, cv: CV): { exports: string[]; core: string[] } {
  const generated = bindingsCpp.slice(bindingsCpp.indexOf('EMSCRIPTEN_BINDINGS(testBinding)'));
  const exports = new Set<string>();
  let cls = '';
  for (const line of generated.split('\n')) {
    const c = /class_<[^>]*>\("(\w+)"\)/.exec(line);
    if (c) {
      cls = c[1]!;
      exports.add(cls);
      continue;
    }
    const method = /^\s*\.function\("(\w+)"/.exec(line);
    if (method && cls) exports.add(`${cls}.${method[1]}`);
    const fn = /^\s*function\("(\w+)"/.exec(line);
    if (fn) {
      cls = '';
      exports.add(fn[1]!);
    }
  }
  const utils = bindingsCpp.slice(bindingsCpp.indexOf('EMSCRIPTEN_BINDINGS(binding_utils)'), bindingsCpp.indexOf('EMSCRIPTEN_BINDINGS(testBinding)'));
  const core = new Set<string>();
  for (const m of utils.matchAll(/(?:class_|register_vector|value_object|value_array)<[^>]*>\("(\w+)"/g)) {
    if (cv[m[1]!] !== undefined) core.add(m[1]!);
  }
  return { exports: [...exports].sort(), core: [...core].sort() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, bindings] = process.argv.slice(2);
  if (!dir || !bindings) {
    console.error('usage: exports.ts <dir with opencv-simd.*> <bindings.cpp>');
    process.exit(2);
  }
  const cv = await loadOpenCv('simd', { dir: path.resolve(dir), warmUp: false });
  const { exports, core } = bindingNames(readFileSync(bindings, 'utf8'), cv);
  const missing = missingNames(cv);
  console.log(JSON.stringify({ exports, core, missing }));
  process.exit(missing.length ? 1 : 0);
}
