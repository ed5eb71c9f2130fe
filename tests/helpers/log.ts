import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface LogEntry {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface CapturedLog {
  log: Logger;
  /** Every entry so far, parsed. */
  lines(): LogEntry[];
  /** Every entry so far as raw JSON text (to check that something is never written). */
  text(): string;
  /** Resolves with the first entry (already logged or to come) that matches. */
  waitFor(match: (entry: LogEntry) => boolean): Promise<LogEntry>;
}

/** A pino logger that keeps what it writes, to assert on what was logged. */
export function capturingLogger(level: pino.LevelWithSilent = 'debug'): CapturedLog {
  const raw: string[] = [];
  const waiters: { match: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      const text = String(chunk);
      raw.push(text);
      const entry = JSON.parse(text) as LogEntry;
      for (const w of [...waiters]) {
        if (w.match(entry)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(entry);
        }
      }
      done();
    },
  });
  const lines = () => raw.map((l) => JSON.parse(l) as LogEntry);
  return {
    log: pino({ level }, stream),
    lines,
    text: () => raw.join(''),
    waitFor(match) {
      const found = lines().find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}
