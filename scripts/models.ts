/**
 * `npm run models [-- --check] [--dir <dir>] [--base-url <url>] [--only <file,...>]`: downloads every
 * file of the model manifest into CVSERVE_MODELS_DIR (or --dir), verifies each sha256, writes
 * atomically, leaves files already present and correct as they are, and prints each file as
 * verified, fetched, missing (--check) or FAILED. Exit status 1 when a file is missing or failed,
 * 2 on wrong usage.
 */
import { ConfigError, loadConfig } from '../src/config.js';
import { fetchModels, formatReport, formatResult } from '../src/models/fetch.js';

const USAGE = 'usage: npm run models -- [--check] [--dir <dir>] [--base-url <url>] [--only <file,...>]';

async function main(argv: string[]): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  let dir = config.modelsDir;
  let baseUrl = config.modelsBaseUrl || undefined;
  let files: string[] | undefined;
  let checkOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    try {
      if (arg === '--check') checkOnly = true;
      else if (arg === '--dir') dir = value();
      else if (arg === '--base-url') baseUrl = value();
      else if (arg === '--only') files = value().split(',').map((s) => s.trim()).filter(Boolean);
      else throw new Error(`unknown argument ${arg}`);
    } catch (err) {
      console.error(`${(err as Error).message}\n${USAGE}`);
      return 2;
    }
  }
  // On a terminal each file shows up as it is decided; the full report follows on stdout.
  const progress = process.stderr.isTTY ? (r: Parameters<typeof formatResult>[0]) => process.stderr.write(formatResult(r) + '\n') : undefined;
  const report = await fetchModels({
    dir,
    manifestFile: config.modelsManifest || undefined,
    baseUrl,
    files,
    checkOnly,
    timeoutMs: config.modelsFetchTimeoutMs,
    onResult: progress,
  });
  console.log(formatReport(report));
  return report.failed.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
