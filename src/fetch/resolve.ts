import dns from 'node:dns';
import net from 'node:net';
import { AppError } from '../errors.js';
import { ipLiteral, type AddressPolicy } from './address-policy.js';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has. Injectable so tests never touch real DNS. */
export type HostLookup = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemLookup: HostLookup = async (hostname) => {
  const found = await dns.promises.lookup(hostname, { all: true, verbatim: true });
  return found.map(({ address }) => ({ address, family: net.isIP(address) === 6 ? 6 : 4 }));
};

/** Rejects with the signal's reason when it aborts first; the lookup itself cannot be cancelled. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (err: unknown) => { signal.removeEventListener('abort', onAbort); reject(err); },
    );
  });
}

function forbidden(host: string, address: string, range: string): AppError {
  return new AppError('FORBIDDEN_ADDRESS', {
    publicMessage: `The URL's host ${host} is on a network that may not be fetched (loopback, private, link-local or another non-public range); ` +
      'a server run for local development can allow them with CVSERVE_ALLOW_PRIVATE_NETWORKS=true',
    detail: `${host} -> ${address} (${range})`,
  });
}

/**
 * The addresses a request to `url` may connect to: the IP literal itself, or every address the
 * host resolves to. All of them must pass the policy, otherwise the host is refused as a whole.
 */
export async function resolveCheckedAddresses(
  url: URL,
  lookup: HostLookup,
  policy: AddressPolicy,
  signal: AbortSignal,
): Promise<ResolvedAddress[]> {
  const literal = ipLiteral(url.hostname);
  let addresses: ResolvedAddress[];
  if (literal !== undefined) {
    addresses = [{ address: literal, family: net.isIP(literal) === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await untilAborted(lookup(url.hostname), signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new AppError('URL_FETCH_FAILED', {
        publicMessage: `Could not resolve the host ${url.hostname}`,
        detail: `lookup ${url.hostname}: ${(err as Error)?.message ?? String(err)}`,
        cause: err,
      });
    }
    if (addresses.length === 0) {
      throw new AppError('URL_FETCH_FAILED', { publicMessage: `Could not resolve the host ${url.hostname}`, detail: `lookup ${url.hostname}: no addresses` });
    }
  }
  const checked: ResolvedAddress[] = [];
  for (const { address } of addresses) {
    const verdict = policy(address);
    if (!verdict.allowed) throw forbidden(url.hostname, address, verdict.range);
    checked.push({ address, family: net.isIP(address) === 6 ? 6 : 4 });
  }
  return checked;
}
