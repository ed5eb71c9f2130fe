import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { AppError } from '../errors.js';
import { redactUrl } from './target.js';
import type { ResolvedAddress } from './resolve.js';

export type ExchangeOutcome =
  | { kind: 'redirect'; status: number; location: string }
  | { kind: 'body'; bytes: Buffer };

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

const REQUEST_HEADERS = { 'user-agent': 'cvserve', accept: 'image/*' };

/**
 * Hands the socket only the addresses that were already checked, so there is no second DNS
 * answer to rebind to. The host name stays in the request, keeping Host and TLS SNI right.
 */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const usable = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
    if (usable.length === 0) {
      callback(Object.assign(new Error('no checked address of the requested family'), { code: 'ENOTFOUND' }), '', 0);
    } else if (options.all) {
      callback(null, usable.map((a) => ({ address: a.address, family: a.family })));
    } else {
      callback(null, usable[0]!.address, usable[0]!.family);
    }
  };
}

function connectionError(url: URL, err: NodeJS.ErrnoException): AppError {
  const code = err.code ?? '';
  let publicMessage = `Could not fetch the image from ${url.host}`;
  if (code === 'ECONNREFUSED') publicMessage = `${url.host} refused the connection`;
  else if (code === 'ECONNRESET') publicMessage = `The connection to ${url.host} was closed unexpectedly`;
  else if (code.startsWith('HPE_')) publicMessage = `${url.host} sent an invalid HTTP response`;
  else if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.includes('SELF_SIGNED')) publicMessage = `The TLS certificate of ${url.host} could not be verified`;
  return new AppError('URL_FETCH_FAILED', { publicMessage, detail: `GET ${redactUrl(url)}: ${code} ${err.message}`, cause: err });
}

function tooLarge(url: URL, maxBytes: number, declared?: number): AppError {
  const size = declared === undefined ? 'larger than' : `${declared} bytes, more than`;
  return new AppError('DOWNLOAD_TOO_LARGE', {
    publicMessage: `The image at the URL is ${size} the limit of ${maxBytes} bytes`,
    detail: `GET ${redactUrl(url)}: over ${maxBytes} bytes`,
  });
}

/**
 * One GET to `url`, connecting only to `addresses`. Resolves with the redirect target or the whole
 * body (at most `maxBytes`); rejects with an AppError, or with `signal.reason` once it aborts.
 */
export function exchange(url: URL, addresses: ResolvedAddress[], maxBytes: number, signal: AbortSignal): Promise<ExchangeOutcome> {
  return new Promise<ExchangeOutcome>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    const transport = url.protocol === 'https:' ? https : http;
    const req = transport.request(url, { method: 'GET', agent: false, headers: REQUEST_HEADERS, lookup: pinnedLookup(addresses) });

    // Listeners stay attached after settling, so late socket errors are absorbed, never thrown.
    const settle = (done: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      done();
    };
    const fail = (err: unknown) => settle(() => reject(err));
    const onAbort = () => fail(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });

    req.on('error', (err) => fail(connectionError(url, err)));
    req.on('response', (res) => {
      res.on('error', (err) => fail(connectionError(url, err)));
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (REDIRECT_STATUSES.has(status) && location) {
        settle(() => resolve({ kind: 'redirect', status, location }));
        return;
      }
      if (status < 200 || status > 299) {
        fail(new AppError('URL_FETCH_FAILED', {
          publicMessage: `${url.host} answered HTTP ${status} for the image URL`,
          detail: `GET ${redactUrl(url)}: HTTP ${status}`,
        }));
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        fail(tooLarge(url, maxBytes, declared));
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        received += chunk.length;
        if (received > maxBytes) {
          fail(tooLarge(url, maxBytes));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (res.complete) settle(() => resolve({ kind: 'body', bytes: Buffer.concat(chunks, received) }));
      });
      res.on('close', () => {
        fail(new AppError('URL_FETCH_FAILED', {
          publicMessage: `The connection to ${url.host} closed before the image was complete`,
          detail: `GET ${redactUrl(url)}: closed after ${received} bytes`,
        }));
      });
    });
    req.end();
  });
}
