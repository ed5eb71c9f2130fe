// Prints the configuration and error tables generated from src/config.ts and src/errors.ts; with --write, updates README.md in place.
import { readFileSync, writeFileSync } from 'node:fs';
import { configTable } from '../src/config.js';
import { errorTable } from '../src/errors.js';

const TABLES: [name: string, table: () => string][] = [
  ['config', configTable],
  ['errors', errorTable],
];

if (process.argv.includes('--write')) {
  let readme = readFileSync('README.md', 'utf8');
  for (const [name, table] of TABLES) {
    const [start, end] = [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`];
    const [before, rest] = readme.split(start);
    const after = rest?.split(end)[1];
    if (before === undefined || after === undefined) throw new Error(`README.md lacks ${start} … ${end}`);
    readme = `${before}${start}\n${table()}\n${end}${after}`;
  }
  writeFileSync('README.md', readme);
} else {
  for (const [, table] of TABLES) console.log(`${table()}\n`);
}
