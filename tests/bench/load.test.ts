import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { AnswerReader } from '../../bench/answer-reader.js';
import { requestBytes, runLoad, type LoadClient } from '../../bench/load.js';

/** A server on 127.0.0.1 that counts the requests and connections it saw. */
async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen = { requests: 0, connections: 0, bodies: [] as number[] };
  const server = http.createServer((req, res) => {
    seen.requests++;
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      seen.bodies.push(bytes);
      handler(req, res);
    });
  });
  server.on('connection', () => seen.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/v1/vision/detection`;
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A server writing `pieces` one event-loop turn apart for each whole request of `requestLength` bytes; `seen.requests` counts those it answered. */
async function serveBytes(requestLength: number, pieces: Buffer[], closeAfterEach = false) {
  const seen = { requests: 0, connections: 0 };
  const server = net.createServer((socket) => {
    seen.connections++;
    let got = 0;
    socket.on('data', async (chunk) => {
      got += chunk.length;
      while (got >= requestLength) {
        got -= requestLength;
        if (socket.writableEnded) return; // hung up already: this request is never answered
        seen.requests++;
        for (const piece of pieces) {
          socket.write(piece);
          await new Promise((r) => setImmediate(r));
        }
        if (closeAfterEach) socket.end();
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/x`;
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const body = Buffer.alloc(20_000, 7);
const load = (url: string, client: LoadClient = 'raw', maxRequests = 40) =>
  runLoad({ url, method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body, connections: 4, durationS: 60, client, maxRequests });

describe('bench load clients', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const close of closers) await close();
  });

  for (const client of ['raw', 'undici'] as const) {
    it(`${client}: keeps 4 connections open and counts every answer`, async () => {
      const s = await serve((_req, res) => res.end(JSON.stringify({ success: true, predictions: [] })));
      closers.push(s.close);
      const result = await load(s.url, client);
      assert.equal(result.ok, 40);
      assert.equal(result.errors, 0);
      assert.equal(s.seen.requests, 40);
      assert.equal(s.seen.connections, 4);
      assert.deepEqual(new Set(s.seen.bodies), new Set([body.length]));
    });
  }

  it('raw: chunked answers, and non-2xx answers counted as errors', async () => {
    let n = 0;
    const s = await serve((_req, res) => {
      res.statusCode = n++ % 2 === 0 ? 200 : 503;
      res.write('x'.repeat(3000));
      res.end('y'.repeat(70_000));
    });
    closers.push(s.close);
    const result = await load(s.url);
    assert.deepEqual(result.statusCodes, { 200: 20, 503: 20 });
    assert.equal(result.ok, 20);
    assert.equal(result.errors, 20);
    assert.equal(s.seen.connections, 4);
  });

  it('raw: a server that closes after each answer gets a new connection per request', async () => {
    const s = await serve((_req, res) => {
      res.setHeader('Connection', 'close');
      res.end('{}');
    });
    closers.push(s.close);
    const result = await load(s.url, 'raw', 12);
    assert.equal(result.ok, 12);
    assert.equal(result.errors, 0);
    assert.equal(s.seen.connections, 12);
  });

  it('raw: answers in pieces, after an interim 100, framed by the end of the connection', async () => {
    const spec = { url: 'http://127.0.0.1:1/x', method: 'POST' as const, headers: { 'content-type': 'application/octet-stream' }, body };
    const pieces = ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n', '\r\nhello', ' world'].map((p) => Buffer.from(p));
    const s = await serveBytes(requestBytes(spec).length, pieces, true);
    closers.push(s.close);
    const result = await load(s.url, 'raw', 8);
    assert.equal(result.ok, 8);
    assert.equal(result.errors, 0);
    assert.equal(s.seen.connections, 8);
  });

  it('raw: a kept-alive connection the server closed is sent on again, not counted as an error', async () => {
    const spec = { url: 'http://127.0.0.1:1/x', method: 'POST' as const, headers: { 'content-type': 'application/octet-stream' }, body };
    // HTTP/1.1 with a length and no Connection: close, then the server hangs up anyway (an idle timeout).
    const s = await serveBytes(requestBytes(spec).length, [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}')], true);
    closers.push(s.close);
    const result = await load(s.url, 'raw', 10);
    assert.equal(result.ok, 10);
    assert.equal(result.errors, 0);
    assert.equal(s.seen.requests, 10);
  });

  it('raw: a connection refused counts as errors, without spinning', async () => {
    const s = await serve((_req, res) => res.end());
    await s.close();
    const result = await load(s.url, 'raw', 8);
    assert.equal(result.ok, 0);
    assert.equal(result.errors, 8);
  });
});

describe('AnswerReader', () => {
  const chunked = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n');

  it('frames a chunked answer with a trailer, whole or byte by byte', () => {
    assert.deepEqual(new AnswerReader().feed(chunked), { status: 200, keepAlive: true });
    const reader = new AnswerReader();
    const answers = [...chunked].map((b) => reader.feed(Buffer.from([b])));
    assert.equal(answers.filter(Boolean).length, 1);
    assert.deepEqual(answers.at(-1), { status: 200, keepAlive: true });
  });

  it('waits for the last byte of a length-framed body', () => {
    const reader = new AnswerReader();
    assert.equal(reader.feed(Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab')), undefined);
    assert.deepEqual(reader.feed(Buffer.from('cd')), { status: 404, keepAlive: false });
  });

  it('refuses bytes past the answer and a head that is not HTTP', () => {
    assert.throws(() => new AnswerReader().feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab')), /1 bytes after the answer/);
    assert.throws(() => new AnswerReader().feed(Buffer.from('SSH-2.0\r\n\r\n')), /not an HTTP/);
  });

  it('an answer without a length ends with the connection', () => {
    const reader = new AnswerReader();
    assert.equal(reader.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\nsome body')), undefined);
    assert.deepEqual(reader.end(), { status: 200, keepAlive: false });
    assert.equal(new AnswerReader().end(), undefined);
  });
});
