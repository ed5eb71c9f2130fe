import { ConfigError, loadConfig, type Config } from './config.js';
import { startServer } from './listen.js';

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
  const { shutdown, service } = await startServer(config);
  process.on('unhandledRejection', (reason) => service.log.error({ err: reason }, 'unhandled promise rejection'));
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
