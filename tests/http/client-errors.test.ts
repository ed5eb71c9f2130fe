import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testConfig, type Config } from '../../src/config.js';
import { startServer } from '../../src/listen.js';
import { parseRawAnswer, rawExchange } from '../helpers/http.js';
import '../helpers/net.js';

/**
 * What the listening server does with clients that are slow, malformed or too many, before any
 * route sees them: through startServer, the way the service listens. Each slow client here never
 * finishes on its own, so only the configured limit can end it; the limits are tiny.
 */

type Started = Awaited<ReturnType<typeof startServer>>;

/** The real server on 127.0.0.1, with an empty models directory (no model to load: it starts fast). */
async function start(overrides: Partial<Config>): Promise<Started & { port: number; dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cvserve-client-errors-'));
  const started = await startServer(
    testConfig({ host: '127.0.0.1', port: 0, logLevel: 'silent', modelsDir: dir, modelsFetch: false, opencvWorkers: 1, onnxWorkers: 1, onnxThreads: 1, ...overrides }),
  );
  return { ...started, port: (started.server.address() as AddressInfo).port, dir };
}

async function stop(s: Started & { dir: string }): Promise<void> {
  s.server.closeAllConnections();
  await s.shutdown('test over');
  rmSync(s.dir, { recursive: true, force: true });
}

/**
 * Node checks the header and body time limits on a timer that runs every 30 s by default (armed
 * when the server starts listening); re-arming it to run every `ms` lets a tiny limit show at once.
 */
function checkConnectionsEvery(server: Server, ms: number): void {
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = ms;
  server.emit('listening');
}

function expectJsonError(text: string, status: number, code: string, message: string): void {
  const answer = parseRawAnswer(text);
  assert.equal(answer.status, status, text.slice(0, 300));
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(answer.headers.connection, 'close');
  assert.deepEqual(JSON.parse(answer.body), { status: status === 408 ? 'request timeout' : 'bad request', message, code });
}

describe('the listening server: malformed requests, slow headers, idle connections', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    // The body limit is far away: only the header limit can end a client that stops mid-headers.
    s = await start({ headersTimeoutMs: 200, bodyTimeoutMs: 600_000, keepAliveTimeoutMs: 150 });
    checkConnectionsEvery(s.server, 25);
  });
  after(() => stop(s));

  it('answers a request Node cannot parse with a JSON 400 MALFORMED_REQUEST', async () => {
    const text = await rawExchange(s.port, 'THIS IS NOT HTTP\r\n\r\n');
    expectJsonError(text, 400, 'MALFORMED_REQUEST', 'Malformed HTTP request');
  });

  it('answers headers that never finish with a JSON 408 CLIENT_TIMEOUT (CVSERVE_HEADERS_TIMEOUT_MS)', { timeout: 30_000 }, async () => {
    const text = await rawExchange(s.port, 'POST /canny HTTP/1.1\r\nHost: cvserve\r\nContent-Type: image/jpeg\r\n');
    expectJsonError(text, 408, 'CLIENT_TIMEOUT', 'The request was not received in time');
  });

  it('closes an idle keep-alive connection after CVSERVE_KEEP_ALIVE_TIMEOUT_MS', { timeout: 30_000 }, async () => {
    // One complete request; the client then says nothing: only the server can end the connection.
    const text = await rawExchange(s.port, 'GET /healthz HTTP/1.1\r\nHost: cvserve\r\n\r\n');
    const answer = parseRawAnswer(text);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.connection, 'keep-alive');
    assert.equal(answer.body, '{"status":"ok"}');
  });

  it('sets the configured limits on the server', () => {
    assert.deepEqual([s.server.headersTimeout, s.server.requestTimeout, s.server.keepAliveTimeout], [200, 600_000, 150]);
  });
});

describe('the listening server: slow bodies', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start({ headersTimeoutMs: 200, bodyTimeoutMs: 400 });
    checkConnectionsEvery(s.server, 25);
  });
  after(() => stop(s));

  it('answers a body that never finishes with a JSON 408 CLIENT_TIMEOUT (CVSERVE_BODY_TIMEOUT_MS)', { timeout: 30_000 }, async () => {
    // The headers are complete at once: only the whole-request limit applies.
    const text = await rawExchange(s.port, 'POST /canny HTTP/1.1\r\nHost: cvserve\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n', Buffer.alloc(10, 0xff));
    expectJsonError(text, 408, 'CLIENT_TIMEOUT', 'The request was not received in time');
  });
});

describe('the listening server: the connection cap and the keep-alive promise', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start({ maxConnections: 2, keepAliveTimeoutMs: 7000 });
  });
  after(() => stop(s));

  it('tells keep-alive clients the idle timeout (Keep-Alive: timeout=7), and drops a connection past CVSERVE_MAX_CONNECTIONS', async () => {
    const open = async () => {
      const socket = net.connect({ host: '127.0.0.1', port: s.port });
      await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      return socket;
    };
    const exchange = (socket: net.Socket) =>
      new Promise<string>((resolve) => {
        let text = '';
        const onData = (c: Buffer) => {
          text += c.toString('latin1');
          if (text.includes('{"status":"ok"}')) done();
        };
        const done = () => {
          socket.off('data', onData);
          resolve(text);
        };
        socket.on('data', onData);
        socket.once('close', done);
        socket.once('error', () => {});
        socket.write('GET /healthz HTTP/1.1\r\nHost: cvserve\r\n\r\n');
      });
    // Connected in this order, so the server accepts them in this order: the third is one too many.
    const a = await open();
    const b = await open();
    const c = await open();
    try {
      const third = await exchange(c);
      assert.equal(third, '', 'the third connection was closed without an answer');
      for (const socket of [a, b]) {
        const answer = parseRawAnswer(await exchange(socket));
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['keep-alive'], 'timeout=7');
      }
    } finally {
      for (const socket of [a, b, c]) socket.destroy();
    }
  });
});
