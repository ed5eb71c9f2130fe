// Prints the configuration table generated from src/config.ts; with --write, updates README.md in place.
import { readFileSync, writeFileSync } from 'node:fs';
import { configTable } from '../src/config.js';

const START = '<!-- config:start -->';
const END = '<!-- config:end -->';

if (process.argv.includes('--write')) {
  const readme = readFileSync('README.md', 'utf8');
  const [before, rest] = readme.split(START);
  const after = rest?.split(END)[1];
  if (before === undefined || after === undefined) throw new Error(`README.md lacks ${START} … ${END}`);
  writeFileSync('README.md', `${before}${START}\n${configTable()}\n${END}${after}`);
} else {
  console.log(configTable());
}
