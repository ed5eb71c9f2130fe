import { AppError, isAppError } from '../errors.js';
import { createAddressPolicy } from './address-policy.js';
import { exchange } from './exchange.js';
import { resolveCheckedAddresses, systemLookup, type HostLookup } from './resolve.js';
import { DEFAULT_MAX_URL_LENGTH, parseRedirectTarget, parseTargetUrl, redactUrl } from './target.js';

export type { HostLookup, ResolvedAddress } from './resolve.js';
export { addressRange, isPublicAddress } from './address-policy.js';
export { DEFAULT_MAX_URL_LENGTH } from './target.js';

export interface UrlFetchOptions {
  /** Largest body accepted, checked against Content-Length and while streaming → 413. */
  maxBytes: number;
  /** Total time for DNS, connecting, every redirect and the body → 504. */
  timeoutMs: number;
  /** Redirects followed; each hop's scheme and addresses are checked again. */
  maxRedirects: number;
  /** Let the URL reach loopback/private/link-local/... addresses. Schemes, limits and timeouts still apply. */
  allowPrivateNetworks: boolean;
  /** Aborting rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Longest URL accepted (the client's and each redirect's) → 400. Default 2048. */
  maxUrlLength?: number;
  /** Addresses or CIDR ranges exempt from the address rule, e.g. an internal image host. */
  allowAddresses?: readonly string[];
  /** Host name resolution; default `dns.promises.lookup(host, {all: true})`. Not called for IP literals. */
  lookup?: HostLookup;
  /**
   * Called with each checked address (and the port) right before a request that may connect to it.
   * Throwing refuses the connection: the fetch rejects with that AppError, or URL_FETCH_FAILED.
   */
  onConnect?: (address: string, port: number) => void;
}

function defaultPort(url: URL): number {
  return url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

async function fetchFollowingRedirects(first: URL, options: UrlFetchOptions, signal: AbortSignal): Promise<Buffer> {
  const policy = createAddressPolicy(options);
  const lookup = options.lookup ?? systemLookup;
  const maxUrlLength = options.maxUrlLength ?? DEFAULT_MAX_URL_LENGTH;
  let url = first;
  for (let redirects = 0; ; redirects++) {
    const addresses = await resolveCheckedAddresses(url, lookup, policy, signal);
    if (signal.aborted) throw signal.reason;
    const port = defaultPort(url);
    try {
      for (const { address } of addresses) options.onConnect?.(address, port);
    } catch (err) {
      if (isAppError(err)) throw err;
      throw new AppError('URL_FETCH_FAILED', { publicMessage: `Could not connect to ${url.host}`, detail: `onConnect refused: ${String(err)}`, cause: err });
    }
    const outcome = await exchange(url, addresses, options.maxBytes, signal);
    if (outcome.kind === 'body') return outcome.bytes;
    if (redirects >= options.maxRedirects) {
      throw new AppError('URL_FETCH_FAILED', {
        publicMessage: `The image URL redirected more than ${options.maxRedirects} times`,
        detail: `too many redirects, last ${redactUrl(url)} -> ${redactUrl(outcome.location, url)}`,
      });
    }
    url = parseRedirectTarget(outcome.location, url, maxUrlLength);
  }
}

/**
 * Downloads the bytes at a client-supplied http(s) URL without letting it reach the service's own
 * network: every hop's addresses are checked and the socket connects only to checked addresses.
 */
export async function fetchUrlBytes(url: string, options: UrlFetchOptions): Promise<Buffer> {
  options.signal?.throwIfAborted();
  const target = parseTargetUrl(url, options.maxUrlLength ?? DEFAULT_MAX_URL_LENGTH);

  const deadline = new AbortController();
  const timer = setTimeout(() => {
    deadline.abort(new AppError('URL_FETCH_TIMEOUT', {
      publicMessage: `Fetching the image URL took longer than ${options.timeoutMs} ms`,
      detail: `timeout after ${options.timeoutMs} ms: ${redactUrl(target)}`,
    }));
  }, options.timeoutMs);
  const outer = options.signal;
  const onOuterAbort = () => deadline.abort(outer!.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    return await fetchFollowingRedirects(target, options, deadline.signal);
  } catch (err) {
    if (deadline.signal.aborted) throw deadline.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

export type UrlFetchHooks = Pick<UrlFetchOptions, 'lookup' | 'onConnect' | 'allowAddresses'>;

/** The `?url=` download service under the configured rules (tests add hooks so no real network is reached). */
export function createUrlFetcher(
  config: { urlMaxBytes: number; urlTimeoutMs: number; urlMaxRedirects: number; urlMaxLength: number; allowPrivateNetworks: boolean },
  hooks: UrlFetchHooks = {},
): (url: string, signal: AbortSignal) => Promise<Buffer> {
  return (url, signal) =>
    fetchUrlBytes(url, {
      maxBytes: config.urlMaxBytes,
      timeoutMs: config.urlTimeoutMs,
      maxRedirects: config.urlMaxRedirects,
      maxUrlLength: config.urlMaxLength,
      allowPrivateNetworks: config.allowPrivateNetworks,
      signal,
      ...hooks,
    });
}
