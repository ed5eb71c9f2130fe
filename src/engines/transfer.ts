import type { Transferable } from 'node:worker_threads';

/** Marks a task result whose buffers move to the main thread instead of being copied (structured clone). */
const TRANSFER = Symbol.for('cvserve.transfer');

export interface Transferred<T> {
  readonly [TRANSFER]: Transferable[];
  readonly value: T;
}

/** What a task module returns to hand `transfer` over with `value` (the buffers are unusable in the worker afterwards). */
export function transferResult<T>(value: T, transfer: Transferable[]): Transferred<T> {
  return { [TRANSFER]: transfer, value };
}

/** The value and the buffers to transfer, from whatever a task returned. */
export function unwrapTransfer(result: unknown): { value: unknown; transfer: Transferable[] } {
  if (result !== null && typeof result === 'object' && TRANSFER in result) {
    const t = result as Transferred<unknown>;
    return { value: t.value, transfer: t[TRANSFER] };
  }
  return { value: result, transfer: [] };
}
