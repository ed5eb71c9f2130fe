import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startServer } from './listen.js';
import { createLogger } from './logger.js';

/** Starts the service from the environment and stops it gracefully on SIGTERM/SIGINT. */
export async function runServer(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  logProcessFaults(createLogger(config));
  const stopBeforeListening = exitLoudlyBeforeListening();
  const { shutdown, service } = await startServer(config);
  stopBeforeListening();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      shutdown(signal).then(
        () => process.exit(0),
        (err) => {
          service.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

/**
 * An unhandled rejection is logged and the service keeps going (one request's bug must not take the
 * others down); an uncaught exception leaves the process in an unknown state, so it is logged and
 * the process exits non-zero for the supervisor to restart it.
 */
function logProcessFaults(log: Logger): void {
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled promise rejection'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; exiting');
    process.exit(1);
  });
}

/**
 * A process that ends before it listens has failed, whatever ended it: Node exits 0 when nothing is
 * left to wait for (start-up stuck on a worker pool whose workers never start, say), and a
 * supervisor would not restart it. Say so on stderr and exit 1. Returns the disarm call.
 */
function exitLoudlyBeforeListening(): () => void {
  const onExit = (code: number) => {
    if (code !== 0) return;
    console.error('cvserve: the process ended before the server was listening (a worker pool that never started? see the log above); exiting 1');
    process.exitCode = 1;
  };
  process.on('exit', onExit);
  return () => process.off('exit', onExit);
}
