import { AppError } from '../errors.js';

/**
 * One request's deadline and cancellation. The timer is a plain setTimeout that this object owns
 * until `clear()`: on Node 20 an `AbortSignal.timeout()` held only through `AbortSignal.any` can be
 * garbage-collected before it fires (nodejs/node#57736), and then the deadline silently never
 * comes. Aborting drops queued engine work; work already running is abandoned, not waited for.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly ms: number) {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.controller.abort(new AppError('REQUEST_TIMEOUT', { detail: `deadline of ${ms} ms passed` }));
    }, ms);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Ends the request early (e.g. the client went away). */
  cancel(reason: unknown): void {
    this.clear();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** The request is over: stop the timer. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Runs `work` under this deadline: settles with its result, or rejects with the abort reason as
   * soon as the deadline passes or the request is cancelled, whichever comes first. Clears the
   * timer either way.
   */
  async run<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = this.signal;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) return reject(signal.reason);
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const running = work(signal);
    running.catch(() => {}); // its failure is reported through the race below, or not at all once the deadline won
    try {
      return await Promise.race([running, aborted]);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
      this.clear();
    }
  }
}
