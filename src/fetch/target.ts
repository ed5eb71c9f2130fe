import { AppError } from '../errors.js';

export const DEFAULT_MAX_URL_LENGTH = 2048;

const SCHEMES = new Set(['http:', 'https:']);

/** The scheme of something that looks like `scheme:...`, for messages; never more than a short word. */
function schemeOf(raw: string): string | undefined {
  return /^([a-z][a-z0-9+.-]{0,15}):/i.exec(raw)?.[1]?.toLowerCase();
}

function invalid(publicMessage: string, detail?: string): AppError {
  return new AppError('INVALID_URL', { publicMessage, detail });
}

/** Parses the client's `?url=`: an absolute http(s) URL with a host, no credentials, bounded length. */
export function parseTargetUrl(raw: string, maxLength: number): URL {
  if (raw.length > maxLength) {
    throw invalid(`url is too long (${raw.length} characters, at most ${maxLength})`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('url must be an absolute http(s) URL, e.g. https://example.com/cat.jpg', `unparsable url: ${raw}`);
  }
  checkFetchable(url, (message) => invalid(message));
  return url;
}

/**
 * Resolves a redirect's Location against the URL that answered with it and applies the same
 * rules as for the client's URL; a bad target is the upstream's fault, hence 502.
 */
export function parseRedirectTarget(location: string, base: URL, maxLength: number): URL {
  const failed = (publicMessage: string) => new AppError('URL_FETCH_FAILED', { publicMessage, detail: `redirect from ${redactUrl(base)} to ${redactUrl(location, base)}` });
  let url: URL;
  try {
    url = new URL(location, base);
  } catch {
    throw failed(`${base.host} redirected to an invalid URL`);
  }
  if (url.href.length > maxLength) throw failed(`${base.host} redirected to a URL longer than ${maxLength} characters`);
  checkFetchable(url, (message) => failed(`${base.host} redirected to a URL that cannot be fetched: ${message}`));
  return url;
}

function checkFetchable(url: URL, fail: (message: string) => AppError): void {
  if (!SCHEMES.has(url.protocol)) {
    const scheme = schemeOf(url.href) ?? url.protocol.replace(/:$/, '');
    throw fail(`only http and https URLs can be fetched, not ${scheme}:`);
  }
  if (url.hostname === '') throw fail('url has no host');
  // `http://trusted.example@evil.example/` reads like a different host than it reaches.
  if (url.username !== '' || url.password !== '') throw fail('URLs with a user name or password are not accepted');
}

/**
 * A URL as the log may show it: scheme, host and path, the query and fragment cut (they often carry
 * signatures or tokens), credentials never.
 */
export function redactUrl(url: URL | string, base?: URL): string {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url, base) : url;
  } catch {
    return '(unparseable URL)';
  }
  return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}${u.hash ? '#…' : ''}`;
}
