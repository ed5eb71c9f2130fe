import diagnostics from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import { WORKER_CHANNEL, type PoolStats, type WorkerEvent } from './pool.js';

/**
 * Logs worker replacements and startup failures of the given pools (the pools publish them on a
 * diagnostics channel; they have no logger of their own). Returns the unsubscribe function.
 */
export function logWorkerEvents(log: Logger, pools: () => PoolStats[]): () => void {
  let own = new Set<number>();
  const onEvent = (message: unknown) => {
    const e = message as WorkerEvent;
    if (!own.has(e.poolId)) own = new Set(pools().map((s) => s.id));
    if (!own.has(e.poolId)) return;
    const fields = { pool: e.pool, event: e.event, reason: e.reason };
    if (e.event === 'retired') log.info(fields, `${e.pool} worker retired and replaced (${e.reason})`);
    else if (e.event === 'crashed') log.error(fields, `${e.pool} worker died and was replaced: ${e.reason}`);
    else log.error(fields, `${e.pool} worker failed to start: ${e.reason}`);
  };
  diagnostics.subscribe(WORKER_CHANNEL, onEvent);
  return () => diagnostics.unsubscribe(WORKER_CHANNEL, onEvent);
}
