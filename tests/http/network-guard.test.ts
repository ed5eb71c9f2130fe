import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { guardedEnv, NETWORK_GUARD } from '../helpers/net.js';
import { REPO_ROOT } from '../helpers/paths.js';

/** Whether this process had the guard before any test module imported it: the test command's `--import`. */
const GUARD_FROM_COMMAND = process.execArgv.some((arg) => arg.endsWith('tests/helpers/network-guard.mjs'));

/**
 * The guard every test that could fetch runs under (tests/helpers/network-guard.mjs). It is tried
 * in a child process whose socket and DNS functions are first replaced by stubs that only record
 * what reached them: even a broken guard could not send anything anywhere from here.
 */

const PROBE = `
import dns from 'node:dns';
import net from 'node:net';
const reached = [];
net.Socket.prototype.connect = function (...args) {
  const o = Array.isArray(args[0]) ? args[0][0] : args[0];
  const host = typeof o === 'object' ? o.host : args[1];
  const finish = (address) => {
    reached.push(address);
    setImmediate(() => this.destroy(Object.assign(new Error('stub'), { code: 'STUB_REACHED' })));
  };
  if (typeof o === 'object' && o.lookup && net.isIP(host) === 0) o.lookup(host, {}, (err, address) => (err ? this.destroy(err) : finish(address)));
  else finish(host);
  return this;
};
dns.lookup = (host, options, cb) => { reached.push('dns:' + host); (cb ?? options)(null, '127.0.0.1', 4); };
dns.promises.lookup = async (host) => { reached.push('dns:' + host); return { address: '127.0.0.1', family: 4 }; };
await import(process.env.GUARD);

const outcome = (make) => new Promise((resolve) => {
  const s = make();
  s.once('error', (e) => resolve(e.code));
  s.once('connect', () => resolve('connected'));
});
const results = {
  publicIp: await outcome(() => net.connect({ host: '93.184.216.34', port: 80 })),
  privateIp: await outcome(() => net.connect(80, '10.0.0.1')),
  mappedIp: await outcome(() => net.connect({ host: '::ffff:10.0.0.1', port: 80 })),
  name: await outcome(() => net.connect({ host: 'example.com', port: 443 })),
  pinnedToPublic: await outcome(() => net.connect({ host: 'images.test', port: 80, lookup: (h, o, cb) => cb(null, '93.184.216.34', 4) })),
  pinnedToLoopback: await outcome(() => net.connect({ host: 'images.test', port: 80, lookup: (h, o, cb) => cb(null, '127.0.0.77', 4) })),
  loopback: await outcome(() => net.connect({ host: '127.0.0.1', port: 9 })),
  localhost: await outcome(() => net.connect({ host: 'localhost', port: 9 })),
  lookup: await dns.promises.lookup('example.com').then(() => 'resolved', (e) => e.code),
  fetch: await fetch('https://example.com/').then(() => 'fetched', (e) => e.cause?.code ?? e.message),
};
console.log(JSON.stringify({ results, reached }));
`;

describe('the test network guard', () => {
  it('refuses every connection and lookup that would leave the machine, loudly, and lets loopback through', () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE], { env: { PATH: process.env.PATH, GUARD: NETWORK_GUARD.href }, encoding: 'utf8', timeout: 60_000 });
    const { results, reached } = JSON.parse(run.stdout) as { results: Record<string, string>; reached: string[] };
    const refused = 'ERR_TEST_NETWORK_GUARD';
    assert.deepEqual(results, {
      publicIp: refused,
      privateIp: refused,
      mappedIp: refused,
      name: refused,
      pinnedToPublic: refused,
      pinnedToLoopback: 'STUB_REACHED',
      loopback: 'STUB_REACHED',
      localhost: 'STUB_REACHED',
      lookup: refused,
      fetch: refused,
    });
    // Only loopback ever reached the (stubbed) network functions.
    assert.deepEqual(reached, ['127.0.0.77', '127.0.0.1', 'dns:localhost', '127.0.0.1']);
    assert.equal(run.status, 1, 'a process that tried to leave the machine fails');
    assert.match(run.stderr, /network guard: 7 refused attempt\(s\) to leave the machine/);
    assert.match(run.stderr, /refused a connection to 93\.184\.216\.34:80/);
  });

  it('is installed by the test command itself (the runner passes it to every file\'s process), not by the files\' imports', () => {
    const script = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.test!;
    assert.match(script, /node --import tsx --import \.\/tests\/helpers\/network-guard\.mjs --test /, 'npm test imports the guard');
    assert.ok(GUARD_FROM_COMMAND, `this test process was started without the guard's --import (execArgv: ${process.execArgv.join(' ')})`);
  });

  it('is passed on to every process a test starts with the inherited environment', () => {
    assert.ok(process.env.NODE_OPTIONS?.includes(`--import=${NETWORK_GUARD.href}`), `NODE_OPTIONS: ${process.env.NODE_OPTIONS}`);
    const run = spawnSync(process.execPath, ['-e', "require('net').connect({ host: '10.0.0.1', port: 80 }).on('error', (e) => console.log(e.code))"], { encoding: 'utf8' });
    assert.equal(run.stdout.trim(), 'ERR_TEST_NETWORK_GUARD', run.stderr);
    assert.equal(run.status, 1, 'the child that tried to leave the machine fails');
  });

  it('is loaded in the processes tests start (NODE_OPTIONS)', () => {
    const run = spawnSync(process.execPath, ['-e', "console.log(Boolean(globalThis[Symbol.for('cvserve.test.networkGuard')]))"], { env: guardedEnv({ PATH: process.env.PATH }), encoding: 'utf8' });
    assert.equal(run.stdout.trim(), 'true', run.stderr);
  });
});
