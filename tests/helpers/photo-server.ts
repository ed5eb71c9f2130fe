import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { image } from './paths.js';

/** A local server on 127.0.0.1 answering `/<name>` with that test photo (404 for any other), for the ?url= way. */
export async function servePhotos(names: readonly string[]): Promise<{ base: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    if (!names.includes(name)) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'image/jpeg' }).end(readFileSync(image(name)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
