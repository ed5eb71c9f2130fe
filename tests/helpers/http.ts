import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';

export interface Listening {
  server: Server;
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** Closes every connection and the listener. */
  close(): Promise<void>;
}

/** Serves `handler` (an app's `handler` or `app`) on 127.0.0.1 with a kernel-chosen port. */
export async function listen(handler: RequestListener): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return wrap(server);
}

/** The same for a server the test made itself (already listening or about to). */
export async function wrap(server: Server): Promise<Listening> {
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A response in a few hundred characters for an assertion message: never image bytes. */
export function brief(res: { status: number; type?: string; text?: string; body?: unknown; headers?: Record<string, unknown> }): string {
  const type = res.type ?? String(res.headers?.['content-type'] ?? '');
  if (/json|text/.test(type) && typeof res.text === 'string') return `${res.status} ${res.text.slice(0, 300)}`;
  const size = Buffer.isBuffer(res.body) ? `${res.body.length} bytes` : 'no text';
  return `${res.status} ${type || '(no type)'} (${size})`;
}

/** A raw TCP exchange with a server on 127.0.0.1: connects, writes, and resolves with everything read until the server closes. */
export function rawExchange(port: number, ...writes: (string | Buffer)[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.once('error', reject);
    socket.once('close', () => resolve(text));
    socket.once('connect', () => {
      for (const w of writes) socket.write(w);
    });
  });
}

/** The status, headers (lower-case) and body of the first HTTP answer in raw text. */
export function parseRawAnswer(text: string): { status: number; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const [statusLine, ...headerLines] = text.slice(0, end < 0 ? text.length : end).split('\r\n');
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? NaN);
  const length = Number(headers['content-length'] ?? NaN);
  const rest = end < 0 ? '' : text.slice(end + 4);
  return { status, headers, body: Number.isFinite(length) ? rest.slice(0, length) : rest };
}
