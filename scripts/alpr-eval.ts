/**
 * Plate reading accuracy of /alpr on a folder of photos with ground truth in OpenALPR's benchmark
 * format (github.com/openalpr/benchmarks, endtoend/us and endtoend/eu: `<photo>.txt` holding
 * `file x y w h PLATE`). The photos are sorted by name and split in two halves: `--part dev` and
 * `--part held-out`, so one half can stay untouched while the other is looked at.
 *
 *   npx tsx scripts/alpr-eval.ts --dir /path/to/endtoend/us --region us --part held-out
 *
 * Prints exact reads of the first plate, of any plate, of any candidate, and with O/0 and I/1 equal.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createApp } from '../src/app.js';
import { CvServeClient, type AlprAnswer } from '../src/client.js';
import { testConfig } from '../src/config.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const dir = args.get('dir');
const region = (args.get('region') ?? 'any') as 'us' | 'eu' | 'any';
const part = args.get('part') ?? 'dev';
if (!dir) throw new Error('usage: --dir <folder> [--region us|eu|any] [--part dev|held-out|all]');

const files = (await readdir(dir)).filter((f) => f.endsWith('.txt')).sort();
const half = Math.ceil(files.length / 2);
const chosen = part === 'all' ? files : part === 'dev' ? files.slice(0, half) : files.slice(half);

const svc = await createApp(testConfig({ logLevel: 'silent', modelsDir: process.env.CVSERVE_MODELS_DIR ?? '../shared/models', modelsFetch: false, onnxWorkers: 1, onnxThreads: 1 }));
const { createServer } = await import('node:http');
const server = createServer(svc.app);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const client = new CvServeClient({ baseUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}` });

const loose = (s: string) => s.replace(/O/g, '0').replace(/I/g, '1');
const counts = { first: 0, any: 0, candidate: 0, looseFirst: 0 };
const misses: string[] = [];
let n = 0;
for (const txt of chosen) {
  const [file, , , , , plate] = (await readFile(path.join(dir, txt), 'utf8')).trim().split(/\s+/);
  if (!file || !plate) continue;
  const truth = plate.toUpperCase().replace(/[^A-Z0-9]/g, '');
  let answer: AlprAnswer;
  try {
    answer = await client.alpr(new Uint8Array(await readFile(path.join(dir, file))), { region, minConfidence: 0 });
  } catch (err) {
    misses.push(`${file}: ${(err as Error).message}`);
    n++;
    continue;
  }
  n++;
  const plates = answer.result.map((r) => r.plate);
  if (plates[0] === truth) counts.first++;
  if (plates.includes(truth)) counts.any++;
  if (answer.result.some((r) => r.candidates.some((c) => c.plate === truth))) counts.candidate++;
  if (plates[0] !== undefined && loose(plates[0]) === loose(truth)) counts.looseFirst++;
  if (plates[0] !== truth) misses.push(`${truth}→${plates.slice(0, 3).join('|') || '-'}`);
}
const pct = (v: number) => `${((100 * v) / n).toFixed(1)}% (${v}/${n})`;
console.log(`${dir} region=${region} part=${part}: first plate exact ${pct(counts.first)}; any plate ${pct(counts.any)}; among candidates ${pct(counts.candidate)}; O/0 I/1 equal ${pct(counts.looseFirst)}`);
if (args.has('misses')) console.log(misses.join('\n'));
server.close();
await svc.close();
