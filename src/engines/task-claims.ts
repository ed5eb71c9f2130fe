/**
 * Who starts a task a worker holds: the worker claims it as it starts, the pool may take it back
 * before that. One shared Int32 cell per held task decides, whichever comes first.
 */

/** Starts a task unless the pool took it back: the cell then no longer holds its id. */
export function claimTask(claims: Int32Array, cell: number, id: number): boolean {
  return Atomics.compareExchange(claims, cell, id, -id) === id;
}

/** Takes a task back before its worker starts it; false once the worker has claimed it. */
export function revokeTask(claims: Int32Array, cell: number, id: number): boolean {
  return Atomics.compareExchange(claims, cell, id, 0) === id;
}
