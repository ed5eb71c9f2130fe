import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { AppError, type ErrorCode } from '../../src/errors.js';
import { fetchUrlBytes, type HostLookup, type UrlFetchOptions } from '../../src/fetch/url-fetch.js';
import { isLoopbackAddress, tableLookup } from '../helpers/net.js';
import { image } from '../helpers/paths.js';
import { localServer, type Handler, type LocalServer } from '../helpers/photo-server.js';
import { until } from '../helpers/wait.js';

// Every connection these tests make goes to 127.0.0.1. Names are resolved only through injected
// lookups, and every fetch carries an onConnect guard that refuses anything but loopback, so a bug
// in the address rule can never send traffic elsewhere (and the process-wide guard of
// tests/helpers/net.ts stands behind that).

const CAT = readFileSync(image('cat_small.jpg'));

interface Attempt {
  connects: [string, number][];
}

/**
 * fetchUrlBytes with safe test defaults: small limits, a lookup that knows no names, and an
 * onConnect that records every attempt and refuses any address outside loopback.
 */
function guardedFetch(url: string, overrides: Partial<UrlFetchOptions> = {}): Promise<Buffer> & Attempt {
  const connects: [string, number][] = [];
  const userHook = overrides.onConnect;
  const promise = fetchUrlBytes(url, {
    maxBytes: 1 << 20,
    // Only a bound on a hang: tests of the time limit set their own against servers that never finish.
    timeoutMs: 60_000,
    maxRedirects: 3,
    allowPrivateNetworks: false,
    lookup: tableLookup({}),
    ...overrides,
    onConnect: (address, port) => {
      connects.push([address, port]);
      if (!isLoopbackAddress(address)) throw new Error(`test guard: refusing to connect to ${address}`);
      userHook?.(address, port);
    },
  });
  return Object.assign(promise, { connects });
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected AppError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.publicMessage} (${err.detail})`);
    if (message) assert.match(err.publicMessage, message);
    return err;
  }
  assert.fail(`expected ${code}, but the fetch succeeded`);
}

/** A raw TCP server answering every connection with `respond(socket)`, for malformed HTTP. */
async function rawServer(respond: (socket: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => respond(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let local: LocalServer;
before(async () => {
  local = await localServer();
});
after(() => local.close());

describe('fetchUrlBytes: fetching a real image', () => {
  before(() => {
    local.routes.set('/cat.jpg', (_req, res) => res.writeHead(200, { 'Content-Type': 'image/jpeg' }).end(CAT));
  });

  it('returns the exact bytes of the image from a local server when private networks are allowed', async () => {
    const fetch = guardedFetch(local.url('/cat.jpg'), { allowPrivateNetworks: true });
    const bytes = await fetch;
    assert.equal(bytes.length, CAT.length);
    assert.ok(bytes.equals(CAT));
    assert.deepEqual(fetch.connects, [['127.0.0.1', local.port]]);
    const last = local.seen.at(-1)!;
    assert.equal(last.headers['user-agent'], 'cvserve');
    assert.equal(last.headers.accept, 'image/*');
  });

  it('connects a named host to the checked address, resolving it once, and keeps the Host header', async () => {
    // A rebinding resolver: the first answer is the checked one, any later answer points elsewhere.
    let answers = 0;
    const lookup: HostLookup = async () => [{ address: answers++ === 0 ? '127.0.0.1' : '10.0.0.1', family: 4 }];
    const fetch = guardedFetch(local.url('/cat.jpg', 'images.test'), { allowPrivateNetworks: true, lookup });
    assert.ok((await fetch).equals(CAT));
    assert.equal(answers, 1);
    assert.deepEqual(fetch.connects, [['127.0.0.1', local.port]]);
    assert.equal(local.seen.at(-1)!.headers.host, `images.test:${local.port}`);
  });

  it('accepts a body of exactly maxBytes', async () => {
    const bytes = await guardedFetch(local.url('/cat.jpg'), { allowPrivateNetworks: true, maxBytes: CAT.length });
    assert.ok(bytes.equals(CAT));
  });
});

describe('fetchUrlBytes: https', () => {
  it('sends the host name (not the checked IP) as TLS SNI, and none for an IP literal', async () => {
    const names: string[] = [];
    // No certificate at all: the handshake fails right after the ClientHello, which is all this test reads.
    const server = tls.createServer({ SNICallback: (name, cb) => { names.push(name); cb(new Error('no certificate'), undefined); } });
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const lookup = tableLookup({ 'images.test': '127.0.0.1' });
      const named = guardedFetch(`https://images.test:${port}/cat.jpg`, { allowPrivateNetworks: true, lookup });
      await rejectsWith(named, 'URL_FETCH_FAILED');
      assert.deepEqual(named.connects, [['127.0.0.1', port]]);
      await rejectsWith(guardedFetch(`https://127.0.0.1:${port}/cat.jpg`, { allowPrivateNetworks: true }), 'URL_FETCH_FAILED');
      assert.deepEqual(names, ['images.test']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('fetchUrlBytes: unsupported URLs → INVALID_URL', () => {
  const cases: [string, RegExp][] = [
    ['file:///etc/passwd', /only http and https.*file:/],
    ['ftp://example.com/cat.jpg', /only http and https.*ftp:/],
    ['gopher://example.com/', /only http and https.*gopher:/],
    ['data:image/png;base64,iVBORw0KGgo=', /only http and https.*data:/],
    ['javascript:alert(1)', /only http and https.*javascript:/],
    ['ws://example.com/', /only http and https.*ws:/],
    ['not a url', /absolute http\(s\) URL/],
    ['/relative/cat.jpg', /absolute http\(s\) URL/],
    ['//example.com/cat.jpg', /absolute http\(s\) URL/],
    ['http://', /absolute http\(s\) URL/],
    ['http://[::1/', /absolute http\(s\) URL/],
    ['http://user:secret@example.com/cat.jpg', /user name or password/],
    ['http://example.com@127.0.0.1/', /user name or password/],
    [`http://example.com/${'a'.repeat(2048)}`, /too long.*at most 2048/],
  ];
  for (const [url, message] of cases) {
    it(`refuses ${url.length > 60 ? `${url.slice(0, 40)}… (${url.length} chars)` : url}`, async () => {
      const lookup = tableLookup({ 'example.com': '93.184.216.34' });
      const fetch = guardedFetch(url, { lookup, allowPrivateNetworks: true });
      const err = await rejectsWith(fetch, 'INVALID_URL', message);
      assert.equal(err.status, 400);
      assert.deepEqual(lookup.calls, []);
      assert.deepEqual(fetch.connects, []);
    });
  }

  it('honours a custom maxUrlLength', async () => {
    await rejectsWith(guardedFetch('http://example.com/cat.jpg', { maxUrlLength: 20 }), 'INVALID_URL', /too long \(26 characters, at most 20\)/);
  });
});

describe('fetchUrlBytes: forbidden IP literals → FORBIDDEN_ADDRESS, nothing resolved or connected', () => {
  const literals = [
    'http://127.0.0.1/',
    'http://127.0.0.1:8080/cat.jpg',
    'https://127.0.0.1/',
    'http://127.1/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://017700000001/',
    'http://0x7f.0.0.1/',
    'http://127.0.0.1./',
    'http://0/',
    'http://0.0.0.0/',
    'http://[::]/',
    'http://[::1]/',
    'http://[0:0:0:0:0:0:0:1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[0:0:0:0:0:ffff:7f00:1]/',
    'http://[::127.0.0.1]/', // deprecated IPv4-compatible
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/',
    'http://[fe80::1]/',
    'http://10.0.0.1/',
    'http://172.16.0.1/',
    'http://172.31.255.255/',
    'http://192.168.1.1/',
    'http://[::ffff:192.168.1.1]/',
    'http://[::ffff:10.0.0.1]/',
    'http://[fd00::1]/',
    'http://[fc00::1]/',
    'http://[fec0::1]/',
    'http://100.64.0.1/',
    'http://224.0.0.1/',
    'http://239.255.255.250/',
    'http://[ff02::1]/',
    'http://255.255.255.255/',
    'http://192.0.0.1/',
    'http://192.0.2.1/',
    'http://198.18.0.1/',
    'http://198.51.100.1/',
    'http://203.0.113.1/',
    'http://240.0.0.1/',
    'http://[2001:db8::1]/',
    'http://[64:ff9b::a9fe:a9fe]/', // NAT64 of 169.254.169.254
    'http://[64:ff9b::7f00:1]/', // NAT64 of 127.0.0.1
    'http://[2002:a00:1::]/', // 6to4 of 10.0.0.1
    'http://[2002:7f00:1::]/', // 6to4 of 127.0.0.1
    'http://[2001::1]/', // Teredo
  ];
  for (const url of literals) {
    it(`refuses ${url}`, async () => {
      const lookup = tableLookup({});
      const fetch = guardedFetch(url, { lookup });
      const err = await rejectsWith(fetch, 'FORBIDDEN_ADDRESS', /may not be fetched/);
      assert.equal(err.status, 403);
      assert.deepEqual(lookup.calls, [], 'an IP literal must be checked directly, not resolved');
      assert.deepEqual(fetch.connects, []);
    });
  }
});

describe('fetchUrlBytes: names resolving to forbidden addresses → FORBIDDEN_ADDRESS', () => {
  const answers: (string | string[])[] = [
    '127.0.0.1',
    '127.53.0.1',
    '::1',
    '10.0.0.1',
    '172.20.1.1',
    '192.168.1.1',
    '169.254.169.254',
    'fe80::1',
    'fd00::1',
    '::ffff:192.168.1.1',
    '::ffff:127.0.0.1',
    '0.0.0.0',
    '::',
    '224.0.0.1',
    'ff02::1',
    '255.255.255.255',
    '100.64.0.1',
    '192.0.2.10',
    '64:ff9b::a00:1',
    '2002:c0a8:101::1',
    'not-an-ip',
    ['93.184.216.34', '10.0.0.1'], // one bad answer refuses the host
    ['2606:2800:220:1:248:1893:25c8:1946', '::1'],
  ];
  for (const answer of answers) {
    it(`refuses evil.example → ${[answer].flat().join(', ')}`, async () => {
      const lookup = tableLookup({ 'evil.example': answer });
      const fetch = guardedFetch('http://evil.example/cat.jpg', { lookup });
      const err = await rejectsWith(fetch, 'FORBIDDEN_ADDRESS', /evil\.example/);
      assert.deepEqual(lookup.calls, ['evil.example']);
      assert.deepEqual(fetch.connects, []);
      for (const address of [answer].flat()) assert.ok(!err.publicMessage.includes(address), 'the resolved address is not echoed');
    });
  }

  it('refuses localhost (resolved through the lookup)', async () => {
    const lookup = tableLookup({ localhost: ['::1', '127.0.0.1'] });
    const fetch = guardedFetch('http://localhost/', { lookup });
    await rejectsWith(fetch, 'FORBIDDEN_ADDRESS');
    assert.deepEqual(fetch.connects, []);
  });
});

describe('fetchUrlBytes: public addresses pass the rule', () => {
  // The guard refuses these in onConnect, so the check is observed without any real connection.
  const cases: [string, Record<string, string | string[]>, [string, number][]][] = [
    ['http://images.example/cat.jpg', { 'images.example': '93.184.216.34' }, [['93.184.216.34', 80]]],
    ['https://images.example/cat.jpg', { 'images.example': '93.184.216.34' }, [['93.184.216.34', 443]]],
    ['http://images.example:8080/cat.jpg', { 'images.example': ['2606:2800:220:1:248:1893:25c8:1946', '93.184.216.34'] }, [['2606:2800:220:1:248:1893:25c8:1946', 8080]]],
    ['http://images.example/cat.jpg', { 'images.example': '::ffff:93.184.216.34' }, [['::ffff:93.184.216.34', 80]]],
    ['http://93.184.216.34/cat.jpg', {}, [['93.184.216.34', 80]]],
    ['http://[2606:2800:220:1:248:1893:25c8:1946]/cat.jpg', {}, [['2606:2800:220:1:248:1893:25c8:1946', 80]]],
    ['http://1.1.1.1/', {}, [['1.1.1.1', 80]]],
  ];
  for (const [url, table, expected] of cases) {
    it(`allows ${url} → ${expected[0]![0]}`, async () => {
      const fetch = guardedFetch(url, { lookup: tableLookup(table) });
      const err = await rejectsWith(fetch, 'URL_FETCH_FAILED', /Could not connect/);
      assert.equal(err.status, 502);
      assert.deepEqual(fetch.connects, expected);
    });
  }

  it('lets allowPrivateNetworks lift the address rule (the hook still sees 10.0.0.1)', async () => {
    const fetch = guardedFetch('http://intranet.example/', { allowPrivateNetworks: true, lookup: tableLookup({ 'intranet.example': '10.0.0.1' }) });
    await rejectsWith(fetch, 'URL_FETCH_FAILED');
    assert.deepEqual(fetch.connects, [['10.0.0.1', 80]]);
  });

  it('passes an AppError thrown by onConnect through unchanged', async () => {
    const refusal = new AppError('FORBIDDEN_ADDRESS', { publicMessage: 'nope' });
    const fetch = guardedFetch(local.url('/cat.jpg'), { allowPrivateNetworks: true, onConnect: () => { throw refusal; } });
    await assert.rejects(fetch, (err) => err === refusal);
  });
});

describe('fetchUrlBytes: redirects', () => {
  const allowLocal = { allowAddresses: ['127.0.0.1'] } as const;
  const redirect = (status: number, location: () => string): Handler => (_req, res) => res.writeHead(status, { Location: location() }).end();

  before(() => {
    local.routes.set('/img/cat.jpg', (_req, res) => res.writeHead(200).end(CAT));
    local.routes.set('/to-metadata', redirect(302, () => 'http://169.254.169.254/latest/meta-data/'));
    local.routes.set('/to-v6-loopback', redirect(301, () => `http://[::1]:${local.port}/img/cat.jpg`));
    local.routes.set('/to-evil', redirect(307, () => `http://evil.example:${local.port}/img/cat.jpg`));
    local.routes.set('/to-file', redirect(302, () => 'file:///etc/passwd'));
    local.routes.set('/relative', redirect(303, () => 'img/cat.jpg'));
    local.routes.set('/absolute-path', redirect(308, () => '/img/cat.jpg'));
    local.routes.set('/hop1', redirect(302, () => '/hop2'));
    local.routes.set('/hop2', redirect(301, () => `http://images.test:${local.port}/img/cat.jpg`));
    local.routes.set('/loop', redirect(302, () => '/loop'));
    local.routes.set('/no-location', (_req, res) => res.writeHead(302).end());
  });

  it('refuses a redirect to 169.254.169.254 after the allowed first hop', async () => {
    const fetch = guardedFetch(local.url('/to-metadata'), allowLocal);
    await rejectsWith(fetch, 'FORBIDDEN_ADDRESS', /169\.254\.169\.254/);
    assert.deepEqual(fetch.connects, [['127.0.0.1', local.port]]);
  });

  it('refuses a redirect to [::1]', async () => {
    const fetch = guardedFetch(local.url('/to-v6-loopback'), allowLocal);
    await rejectsWith(fetch, 'FORBIDDEN_ADDRESS');
    assert.deepEqual(fetch.connects, [['127.0.0.1', local.port]]);
  });

  it('refuses a redirect to a name that resolves to a private address', async () => {
    const lookup = tableLookup({ 'evil.example': '10.0.0.1' });
    const fetch = guardedFetch(local.url('/to-evil'), { ...allowLocal, lookup });
    await rejectsWith(fetch, 'FORBIDDEN_ADDRESS', /evil\.example/);
    assert.deepEqual(lookup.calls, ['evil.example']);
    assert.deepEqual(fetch.connects, [['127.0.0.1', local.port]]);
  });

  it('refuses a redirect to a non-http scheme with 502', async () => {
    const fetch = guardedFetch(local.url('/to-file'), allowLocal);
    await rejectsWith(fetch, 'URL_FETCH_FAILED', /redirected.*only http and https.*file:/);
    assert.deepEqual(fetch.connects, [['127.0.0.1', local.port]]);
  });

  for (const [from, kind] of [['/relative', 'a relative'], ['/absolute-path', 'an absolute-path']] as const) {
    it(`follows ${kind} Location against the current URL`, async () => {
      const before = local.hits('/img/cat.jpg');
      const fetch = guardedFetch(local.url(from), allowLocal);
      assert.ok((await fetch).equals(CAT));
      assert.equal(local.hits('/img/cat.jpg'), before + 1);
      assert.deepEqual(fetch.connects, [['127.0.0.1', local.port], ['127.0.0.1', local.port]]);
    });
  }

  it('checks every hop, resolving a redirected name through the lookup', async () => {
    const lookup = tableLookup({ 'images.test': '127.0.0.1' });
    const fetch = guardedFetch(local.url('/hop1'), { ...allowLocal, lookup });
    assert.ok((await fetch).equals(CAT));
    assert.deepEqual(lookup.calls, ['images.test']);
    assert.equal(fetch.connects.length, 3);
    assert.equal(local.seen.at(-1)!.headers.host, `images.test:${local.port}`);
  });

  it('stops after maxRedirects with 502', async () => {
    const before = local.hits('/loop');
    const fetch = guardedFetch(local.url('/loop'), { ...allowLocal, maxRedirects: 3 });
    await rejectsWith(fetch, 'URL_FETCH_FAILED', /redirected more than 3 times/);
    assert.equal(local.hits('/loop') - before, 4);
  });

  it('follows no redirect when maxRedirects is 0', async () => {
    await rejectsWith(guardedFetch(local.url('/absolute-path'), { ...allowLocal, maxRedirects: 0 }), 'URL_FETCH_FAILED', /more than 0 times/);
  });

  it('treats a redirect without Location as a failed fetch', async () => {
    await rejectsWith(guardedFetch(local.url('/no-location'), allowLocal), 'URL_FETCH_FAILED', /HTTP 302/);
  });
});

describe('fetchUrlBytes: size limit → DOWNLOAD_TOO_LARGE', () => {
  const open = new Set<NodeJS.Timeout>();
  before(() => {
    // Declares 5000 bytes and then sends nothing: only an early Content-Length check can answer before the timeout.
    local.routes.set('/declared-large', (_req, res) => {
      res.writeHead(200, { 'Content-Length': '5000' });
      res.flushHeaders();
    });
    // Chunked, without Content-Length, and never ending on its own.
    local.routes.set('/endless', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/jpeg' });
      const timer = setInterval(() => res.write(Buffer.alloc(512, 1)), 2);
      open.add(timer);
      res.on('close', () => { clearInterval(timer); open.delete(timer); });
    });
  });
  after(() => { for (const t of open) clearInterval(t); });

  it('rejects early when Content-Length exceeds maxBytes', async () => {
    const err = await rejectsWith(guardedFetch(local.url('/declared-large'), { allowPrivateNetworks: true, maxBytes: 1000, timeoutMs: 5000 }), 'DOWNLOAD_TOO_LARGE', /5000 bytes, more than the limit of 1000/);
    assert.equal(err.status, 413);
  });

  it('stops a chunked download without Content-Length once it passes maxBytes', async () => {
    await rejectsWith(guardedFetch(local.url('/endless'), { allowPrivateNetworks: true, maxBytes: 4096, timeoutMs: 5000 }), 'DOWNLOAD_TOO_LARGE', /larger than the limit of 4096/);
  });

  it('rejects the real image one byte over the limit', async () => {
    await rejectsWith(guardedFetch(local.url('/cat.jpg'), { allowPrivateNetworks: true, maxBytes: CAT.length - 1 }), 'DOWNLOAD_TOO_LARGE');
  });

  it('never returns more than Content-Length when the server sends more than it declares', async () => {
    const flood = Buffer.alloc(64 * 1024, 7);
    const server = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100\r\n\r\n');
      socket.end(flood);
    });
    try {
      const fetch = guardedFetch(`http://127.0.0.1:${server.port}/`, { allowPrivateNetworks: true, maxBytes: 1000 });
      const outcome = await fetch.then((bytes) => bytes, (err: unknown) => err);
      if (Buffer.isBuffer(outcome)) assert.ok(outcome.equals(flood.subarray(0, 100)), `got ${outcome.length} bytes`);
      else assert.equal((outcome as AppError).code, 'URL_FETCH_FAILED');
    } finally {
      await server.close();
    }
  });

  it('fails when the connection closes before the declared length arrived', async () => {
    const server = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a little');
    });
    try {
      await rejectsWith(guardedFetch(`http://127.0.0.1:${server.port}/`, { allowPrivateNetworks: true }), 'URL_FETCH_FAILED', /closed before the image was complete|closed unexpectedly/);
    } finally {
      await server.close();
    }
  });

  it('fails on a response that is not HTTP', async () => {
    const server = await rawServer((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n'));
    try {
      await rejectsWith(guardedFetch(`http://127.0.0.1:${server.port}/`, { allowPrivateNetworks: true }), 'URL_FETCH_FAILED', /invalid HTTP response/);
    } finally {
      await server.close();
    }
  });
});

describe('fetchUrlBytes: timeouts and aborts', () => {
  const open = new Set<NodeJS.Timeout>();
  before(() => {
    local.routes.set('/trickle', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/jpeg' });
      const timer = setInterval(() => res.write('x'), 20);
      open.add(timer);
      res.on('close', () => { clearInterval(timer); open.delete(timer); });
    });
    local.routes.set('/silent', () => { /* never answers */ });
  });
  after(() => { for (const t of open) clearInterval(t); });

  for (const [name, pathname] of [['trickles its body', '/trickle'], ['never sends headers', '/silent']]) {
    it(`times out with 504 when the server ${name}`, async () => {
      const started = performance.now();
      const err = await rejectsWith(guardedFetch(local.url(pathname), { allowPrivateNetworks: true, timeoutMs: 300 }), 'URL_FETCH_TIMEOUT', /longer than 300 ms/);
      assert.equal(err.status, 504);
      // The server never finishes, so only the limit ends the download; and a timer never fires early.
      assert.ok(performance.now() - started >= 299, 'not before the limit');
    });
  }

  it('counts DNS in the timeout', async () => {
    const lookup: HostLookup = () => new Promise(() => { /* never resolves */ });
    const fetch = guardedFetch('http://slow-dns.example/', { timeoutMs: 200, lookup });
    await rejectsWith(fetch, 'URL_FETCH_TIMEOUT');
    assert.deepEqual(fetch.connects, []);
  });

  it('rejects with the signal’s reason when aborted mid-download', async () => {
    const controller = new AbortController();
    const reason = new Error('client went away');
    const before = local.hits('/trickle');
    const fetch = guardedFetch(local.url('/trickle'), { allowPrivateNetworks: true, signal: controller.signal });
    await until(() => local.hits('/trickle') > before, 'the download has started');
    controller.abort(reason);
    await assert.rejects(fetch, (err) => err === reason);
  });

  it('rejects with the reason of an already aborted signal without connecting', async () => {
    const reason = new Error('already gone');
    const fetch = guardedFetch(local.url('/cat.jpg'), { allowPrivateNetworks: true, signal: AbortSignal.abort(reason) });
    await assert.rejects(fetch, (err) => err === reason);
    assert.deepEqual(fetch.connects, []);
  });
});

describe('fetchUrlBytes: upstream failures → URL_FETCH_FAILED', () => {
  before(() => {
    local.routes.set('/error', (_req, res) => res.writeHead(500).end('boom'));
  });

  it('reports a 404 upstream as 502 naming the status', async () => {
    const err = await rejectsWith(guardedFetch(local.url('/missing.jpg'), { allowPrivateNetworks: true }), 'URL_FETCH_FAILED', /answered HTTP 404/);
    assert.equal(err.status, 502);
  });

  it('reports a 500 upstream as 502 naming the status', async () => {
    await rejectsWith(guardedFetch(local.url('/error'), { allowPrivateNetworks: true }), 'URL_FETCH_FAILED', /answered HTTP 500/);
  });

  it('reports a refused connection as 502', async () => {
    const closed = await rawServer(() => {});
    const port = closed.port;
    await closed.close();
    await rejectsWith(guardedFetch(`http://127.0.0.1:${port}/`, { allowPrivateNetworks: true }), 'URL_FETCH_FAILED', /refused the connection/);
  });

  it('reports an unknown host as 502', async () => {
    const fetch = guardedFetch('http://no-such-host.example/', { lookup: tableLookup({}) });
    await rejectsWith(fetch, 'URL_FETCH_FAILED', /Could not resolve the host no-such-host\.example/);
    assert.deepEqual(fetch.connects, []);
  });

  it('reports an empty lookup answer as 502', async () => {
    await rejectsWith(guardedFetch('http://empty.example/', { lookup: tableLookup({ 'empty.example': [] }) }), 'URL_FETCH_FAILED', /Could not resolve/);
  });
});
