/** The curl command equivalent to a playground request. Runs in browsers and Node (no imports). */

export type CurlImage = { kind: 'file'; name: string } | { kind: 'url'; url: string };

export interface CurlRequest {
  /** The service's base URL, e.g. http://127.0.0.1:8080 */
  origin: string;
  route: string;
  image: CurlImage;
  /** Parameter values as sent (strings). */
  params: [string, string][];
  /** File to write an image answer to (curl -o); omitted for JSON answers. */
  outputFile?: string;
  /** Send the key from $CVSERVE_API_KEY (the command never contains the key itself). */
  apiKeyFromEnv?: boolean;
}

/** Quotes for a POSIX shell: everything literal inside single quotes. */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export function curlCommand(r: CurlRequest): string {
  const base = `${r.origin.replace(/\/+$/, '')}/${r.route}`;
  const parts = ['curl', '-sS'];
  if (r.apiKeyFromEnv) parts.push('-H', '"Authorization: Bearer $CVSERVE_API_KEY"');
  if (r.image.kind === 'url') {
    const query = new URLSearchParams([['url', r.image.url], ...r.params]);
    parts.push(shellQuote(`${base}?${query}`));
  } else {
    parts.push('-F', shellQuote(`image=@${r.image.name}`));
    // --form-string: a value starting with @ or < is sent as text, never read from a file.
    for (const [name, value] of r.params) parts.push('--form-string', shellQuote(`${name}=${value}`));
    parts.push(shellQuote(base));
  }
  if (r.outputFile) parts.push('-o', shellQuote(r.outputFile));
  return parts.join(' ');
}
