// Loaded into every test process by the test command itself (package.json's "test": `node --import
// tsx --import ./tests/helpers/network-guard.mjs --test ...`; the test runner passes its flags on to
// each file's process) and into every process those start (NODE_OPTIONS, below): a connection or a name lookup that would leave this machine fails at once,
// loudly. Sockets may reach 127.0.0.0/8 and ::1 (and Unix sockets); host names are looked up only
// when they are `localhost` or when the caller brought its own lookup (the tests' fixed tables),
// and every address a lookup answers must itself be loopback. A refusal is an error on the socket
// (the code under test sees a failed connection), a line on stderr, and a failed process: the exit
// code is forced to 1, so a test whose code swallowed the error still fails.
//
// Plain JavaScript on purpose: NODE_OPTIONS imports run before `--import tsx`.
import dns from 'node:dns';
import net from 'node:net';

const INSTALLED = Symbol.for('cvserve.test.networkGuard');
const violations = [];

export const isLoopbackAddress = (address) =>
  typeof address === 'string' && (address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address) || /^::ffff:127\.\d+\.\d+\.\d+$/i.test(address));

const isLocalName = (name) => typeof name === 'string' && (name === 'localhost' || name.endsWith('.localhost'));

/** Every refusal so far (messages), for tests that want to assert none happened. */
export function networkViolations() {
  return [...violations];
}

function refusal(what) {
  const message = `network guard: refused ${what} (tests may reach only 127.0.0.0/8 and ::1)`;
  violations.push(message);
  process.stderr.write(`\n*** ${message}\n${new Error('attempted here').stack?.split('\n').slice(1, 8).join('\n')}\n`);
  return Object.assign(new Error(message), { code: 'ERR_TEST_NETWORK_GUARD' });
}

/** A lookup (dns.lookup's signature) whose every answer must be loopback. */
function checkedLookup(lookup) {
  return function guardedLookup(hostname, options, callback) {
    if (typeof options === 'function') {
      callback = options;
      options = {};
    }
    const opts = typeof options === 'number' ? { family: options } : options ?? {};
    lookup(hostname, opts, (err, address, family) => {
      if (err) return callback(err, address, family);
      const answers = Array.isArray(address) ? address.map((a) => a.address) : [address];
      const outside = answers.find((a) => !isLoopbackAddress(a));
      if (outside !== undefined) return callback(refusal(`${hostname} → ${outside}`));
      callback(null, address, family);
    });
  };
}

/** The host, port and options object of any form of Socket#connect's arguments; `path` for Unix sockets. */
function targetOf(args) {
  const list = Array.isArray(args[0]) ? args[0] : args;
  const first = list[0];
  if (first !== null && typeof first === 'object') {
    if (first.path !== undefined) return { path: first.path };
    return { host: first.host ?? 'localhost', port: first.port, options: first };
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { path: first };
  return { host: typeof list[1] === 'string' ? list[1] : 'localhost', port: first };
}

function install() {
  const originalConnect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function guardedConnect(...args) {
    const target = targetOf(args);
    if (target.path !== undefined) return originalConnect.apply(this, args);
    const host = String(target.host).replace(/^\[|\]$/g, '');
    if (net.isIP(host) !== 0) {
      if (isLoopbackAddress(host)) return originalConnect.apply(this, args);
      const err = refusal(`a connection to ${host}:${target.port}`);
      setImmediate(() => this.destroy(err));
      return this;
    }
    const lookup = target.options?.lookup;
    if (lookup === undefined && !isLocalName(host)) {
      const err = refusal(`a connection to ${host}:${target.port} (its name would be looked up in real DNS)`);
      setImmediate(() => this.destroy(err));
      return this;
    }
    const guarded = checkedLookup(lookup ?? dns.lookup.original ?? dns.lookup);
    if (target.options) {
      target.options.lookup = guarded;
      return originalConnect.apply(this, args);
    }
    const cb = args.find((a) => typeof a === 'function');
    return originalConnect.call(this, { host, port: target.port, lookup: guarded }, cb);
  };

  const originalLookup = dns.lookup;
  const guardedDnsLookup = function lookup(hostname, options, callback) {
    if (isLocalName(hostname) || net.isIP(hostname) !== 0) return originalLookup.call(dns, hostname, options, callback);
    const cb = typeof options === 'function' ? options : callback;
    const err = refusal(`a DNS lookup of ${hostname}`);
    process.nextTick(() => cb(Object.assign(err, { hostname })));
    return {};
  };
  guardedDnsLookup.original = originalLookup;
  dns.lookup = guardedDnsLookup;

  const originalPromiseLookup = dns.promises.lookup;
  dns.promises.lookup = async function lookup(hostname, options) {
    if (isLocalName(hostname) || net.isIP(hostname) !== 0) return originalPromiseLookup.call(dns.promises, hostname, options);
    throw refusal(`a DNS lookup of ${hostname}`);
  };

  for (const name of ['resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveCname', 'resolveTxt', 'resolveSrv']) {
    const original = dns[name];
    if (typeof original === 'function') {
      dns[name] = function resolve(hostname, ...rest) {
        if (isLocalName(hostname)) return original.call(dns, hostname, ...rest);
        const cb = rest.find((a) => typeof a === 'function');
        const err = refusal(`a DNS query for ${hostname}`);
        process.nextTick(() => cb?.(err));
        return undefined;
      };
    }
    const originalPromise = dns.promises[name];
    if (typeof originalPromise === 'function') {
      dns.promises[name] = async function resolve(hostname, ...rest) {
        if (isLocalName(hostname)) return originalPromise.call(dns.promises, hostname, ...rest);
        throw refusal(`a DNS query for ${hostname}`);
      };
    }
  }

  process.on('exit', () => {
    if (violations.length === 0) return;
    process.stderr.write(`\n*** network guard: ${violations.length} refused attempt(s) to leave the machine:\n  ${violations.join('\n  ')}\n`);
    process.exitCode = 1;
  });
}

/**
 * The processes this one starts inherit the guard: NODE_OPTIONS gains `--import` of this module
 * (by absolute URL, so a child in another directory finds it). A test that hands a child a fresh
 * environment adds it itself (tests/helpers/net.ts guardedEnv).
 */
function passOnToChildren() {
  const flag = `--import=${import.meta.url}`;
  const current = process.env.NODE_OPTIONS ?? '';
  if (!current.split(/\s+/).includes(flag)) process.env.NODE_OPTIONS = [current, flag].filter(Boolean).join(' ');
}

if (!globalThis[INSTALLED]) {
  globalThis[INSTALLED] = true;
  install();
  passOnToChildren();
}
