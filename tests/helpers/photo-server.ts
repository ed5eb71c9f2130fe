import { readFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { image } from './paths.js';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface LocalServer {
  port: number;
  /** http://127.0.0.1:<port> */
  base: string;
  /** What each path answers (the path without the query); anything else gets 404. Tests mount their own. */
  routes: Map<string, Handler>;
  /** Every request, in order: its URL and headers. */
  seen: { url: string; headers: http.IncomingHttpHeaders }[];
  /** The URL of `pathname` here, optionally under another host name (resolved by a test lookup). */
  url(pathname: string, host?: string): string;
  /** Requests so far for exactly this URL path (query included). */
  hits(pathname: string): number;
  close(): Promise<void>;
}

/**
 * A local HTTP server on 127.0.0.1 (or another loopback address) whose answer per path the test
 * decides: the image host of ?url= tests, the mirror of model-download tests.
 */
export async function localServer(
  options: { host?: string; /** Answers paths without a route (default 404). */ fallback?: Handler; /** Sees every request first. */ onRequest?: (req: http.IncomingMessage) => void } = {},
): Promise<LocalServer> {
  const host = options.host ?? '127.0.0.1';
  const routes = new Map<string, Handler>();
  const seen: LocalServer['seen'] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    options.onRequest?.(req);
    const handler = routes.get((req.url ?? '/').split('?')[0]!);
    if (handler) handler(req, res);
    else if (options.fallback) options.fallback(req, res);
    else res.writeHead(404).end('not found');
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    base: `http://${host}:${port}`,
    routes,
    seen,
    url: (pathname, name = host) => `http://${name}:${port}${pathname}`,
    hits: (pathname) => seen.filter((s) => s.url === pathname).length,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers 200 with these bytes (and their Content-Length). */
export const serveBytes = (data: Buffer | string, type = 'application/octet-stream'): Handler => (_req, res) =>
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(data)) }).end(data);

/** A local server answering `/<name>` with that test photo (404 for any other), for the ?url= way. */
export async function servePhotos(names: readonly string[]): Promise<LocalServer> {
  const server = await localServer();
  for (const name of names) server.routes.set(`/${encodeURIComponent(name)}`, serveBytes(readFileSync(image(name)), 'image/jpeg'));
  return server;
}
