import { createServer, type Server } from 'node:http';
import { createApp, type CvServe } from './app.js';
import type { Config } from './config.js';
import { answerClientErrorsAsJson } from './http/client-error.js';
import { handleExpectContinue } from './http/expect.js';
import { jpegAddonProblem } from './image/jpeg-decoder.js';
import { createLogger } from './logger.js';

/**
 * The process: config → app → listen → graceful shutdown. On SIGTERM/SIGINT the server stops
 * accepting, lets in-flight requests finish (bounded by CVSERVE_SHUTDOWN_TIMEOUT_MS), closes the
 * resources and worker pools, and exits 0.
 */
export async function startServer(config: Config): Promise<{ server: Server; service: CvServe; shutdown: (reason: string) => Promise<void> }> {
  const log = createLogger(config);
  const service = await createApp(config, { logger: log });
  const server = createHttpServer(service, config);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const url = typeof address === 'object' && address ? browsableUrl(address.address, address.port) : String(address);
  log.info({ address }, `cvserve listening on ${url} (open it in a browser for the playground; API docs at ${url}docs)`);
  const addonProblem = jpegAddonProblem();
  if (addonProblem) {
    log.warn({ reason: addonProblem }, `cvserve's addon (native/jpeg) did not load: sharp decodes JPEGs and enlarges model inputs, JavaScript packs them, the same results for more CPU (about twice on JPEG decoding): ${addonProblem}`);
  }
  if (config.allowPrivateNetworks) {
    log.warn('CVSERVE_ALLOW_PRIVATE_NETWORKS is on: ?url= may fetch loopback, private and link-local addresses (this machine, its network, cloud metadata); only for local development');
  }

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


/**
 * The HTTP server with every connection-level limit from the config: slow headers and bodies time
 * out (408), idle keep-alive connections close, connections past the cap are dropped, parser
 * errors answer JSON, and `Expect: 100-continue` is answered from the declared size.
 */
export function createHttpServer(service: Pick<CvServe, 'handler' | 'messageClasses'>, config: Config): Server {
  const { handler } = service;
  // Node checks the header and body time limits every connectionsCheckingInterval (30 s by default):
  // checked every second, a 20 s limit fires at 20-21 s, not at up to 50.
  const server = createServer({ connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs), ...service.messageClasses }, handler);
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.bodyTimeoutMs;
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.maxConnections = config.maxConnections;
  answerClientErrorsAsJson(server);
  handleExpectContinue(server, handler, config);
  return server;
}

/** A URL a person can open: the wildcard addresses become localhost. */
function browsableUrl(address: string, port: number): string {
  const host = address === '0.0.0.0' || address === '::' ? 'localhost' : address.includes(':') ? `[${address}]` : address;
  return `http://${host}:${port}/`;
}
