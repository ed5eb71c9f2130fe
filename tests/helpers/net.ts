import net from 'node:net';
import type { HostLookup, ResolvedAddress } from '../../src/fetch/url-fetch.js';
import { isLoopbackAddress, networkViolations } from './network-guard.mjs';

/**
 * What keeps tests on this machine. Importing this module installs the process-wide guard
 * (./network-guard.mjs: sockets and DNS outside loopback fail loudly); the helpers below add the
 * same rule where the code under test has its own seams: the app's `?url=` hooks, the model
 * downloads' fetch, and the processes tests start.
 */

export { isLoopbackAddress, networkViolations };

/** The guard module, for `--import` in child processes. */
export const NETWORK_GUARD = new URL('./network-guard.mjs', import.meta.url);

/** `env` plus NODE_OPTIONS importing the guard, so a process a test starts cannot leave the machine either. */
export function guardedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const guard = `--import=${NETWORK_GUARD.href}`;
  return { ...env, NODE_OPTIONS: [env.NODE_OPTIONS, guard].filter(Boolean).join(' ') };
}

/** A lookup from a fixed table (names are case-insensitive) that never touches real DNS. */
export function tableLookup(table: Record<string, string | string[]> = {}): HostLookup & { calls: string[] } {
  const calls: string[] = [];
  const lookup = async (hostname: string): Promise<ResolvedAddress[]> => {
    calls.push(hostname);
    const entry = table[hostname.toLowerCase()];
    if (entry === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return [entry].flat().map((address) => ({ address, family: net.isIP(address) === 6 ? 6 : 4 }));
  };
  return Object.assign(lookup, { calls });
}

/** Records every address a `?url=` download was about to connect to, and refuses all but loopback. */
export class ConnectGuard {
  readonly attempts: string[] = [];
  readonly hook = (address: string, port: number): void => {
    this.attempts.push(`${address}:${port}`);
    if (!isLoopbackAddress(address)) throw new Error(`test guard: refusing to connect to ${address}`);
  };
}

export interface UrlHooks {
  lookup?: HostLookup;
  onConnect?: (address: string, port: number) => void;
  allowAddresses?: readonly string[];
}

/**
 * The `?url=` hooks every test app gets: names resolve only through `hooks.lookup` (default: a
 * table knowing nothing), and whatever hook the test brings, a connection outside loopback is
 * refused. The process-wide guard stands behind it.
 */
export function loopbackUrlHooks(hooks: UrlHooks = {}): Required<Pick<UrlHooks, 'lookup' | 'onConnect'>> & UrlHooks {
  return {
    ...hooks,
    lookup: hooks.lookup ?? tableLookup(),
    onConnect: (address, port) => {
      hooks.onConnect?.(address, port);
      if (!isLoopbackAddress(address)) throw new Error(`test guard: refusing to connect to ${address}:${port}`);
    },
  };
}

/** A fetch for model downloads that refuses any URL whose host is not a loopback address (redirects are re-checked by the socket guard). */
export const loopbackFetch: typeof fetch = async (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!isLoopbackAddress(host)) throw new Error(`test guard: refusing to download ${url.href}`);
  return fetch(input, init);
};

