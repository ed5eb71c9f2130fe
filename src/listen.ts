import { createServer, type Server } from 'node:http';
import { createApp, type CvServe } from './app.js';
import type { Config } from './config.js';
import { answerClientErrorsAsJson } from './http/client-error.js';
import { createLogger } from './logger.js';

/**
 * The process: config → app → listen → graceful shutdown. On SIGTERM/SIGINT the server stops
 * accepting, lets in-flight requests finish (bounded by CVSERVE_SHUTDOWN_TIMEOUT_MS), closes the
 * resources and worker pools, and exits 0.
 */
export async function startServer(config: Config): Promise<{ server: Server; service: CvServe; shutdown: (reason: string) => Promise<void> }> {
  const log = createLogger(config);
  const service = await createApp(config, { logger: log });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(service.handler).listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  // Slow clients must not hold sockets forever; the request deadline covers the work itself.
  server.headersTimeout = 20_000;
  server.requestTimeout = config.requestTimeoutMs + 5_000;
  answerClientErrorsAsJson(server);
  const address = server.address();
  log.info({ address }, `cvserve listening on ${typeof address === 'object' && address ? `${address.address}:${address.port}` : address}`);

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string) => {
    stopping ??= (async () => {
      log.info({ reason }, 'shutting down: no new connections, draining in-flight requests');
      service.lifecycle.beginShutdown();
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs).unref());
      if ((await Promise.race([drained, deadline])) === 'timeout') {
        log.warn('drain timeout reached; closing remaining connections');
        server.closeAllConnections();
      }
      await service.close();
      log.info('shutdown complete');
    })();
    return stopping;
  };
  return { server, service, shutdown };
}

