// Placeholder: the safe URL fetcher is being written (see issue 2). Signature is final.
import { AppError } from '../errors.js';

export interface UrlFetchOptions {
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
  allowPrivateNetworks: boolean;
  signal?: AbortSignal;
}

export async function fetchUrlBytes(url: string, _options: UrlFetchOptions): Promise<Buffer> {
  throw new AppError('URL_FETCH_FAILED', { detail: `not implemented: ${url}` });
}
