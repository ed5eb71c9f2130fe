type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/**
 * Waits until `probe` gives something truthy (checked at once, then every `intervalMs`) and returns
 * it. The time limit only turns a hang into a failure naming `what`: no test outcome depends on it,
 * so it is generous. A probe that throws fails the wait at once with its error, unless `retryOn`
 * says that error means "not yet" (e.g. ENOENT before a file exists).
 */
export async function until<T>(
  probe: () => T | Promise<T>,
  what: string,
  { timeoutMs = 600_000, intervalMs = 10, retryOn = () => false }: { timeoutMs?: number; intervalMs?: number; retryOn?: (err: unknown) => boolean } = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = await probe();
    } catch (err) {
      if (!retryOn(err)) throw new Error(`waiting until ${what}: the probe failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      value = undefined;
    }
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A promise with its resolve function outside, for events the test signals itself. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
