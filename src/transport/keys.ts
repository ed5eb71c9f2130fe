import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import { ConfigError, type Config } from '../config.js';

/** Every key the service accepts: CVSERVE_API_KEYS plus the lines of CVSERVE_API_KEYS_FILE. */
export function loadApiKeys(config: Pick<Config, 'apiKeys' | 'apiKeysFile'>): string[] {
  const keys = [...config.apiKeys];
  if (config.apiKeysFile) {
    let text: string;
    try {
      text = readFileSync(config.apiKeysFile, 'utf8');
    } catch (err) {
      throw new ConfigError([`CVSERVE_API_KEYS_FILE: cannot read ${config.apiKeysFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
    }
    for (const line of text.split(/\r?\n/)) {
      const key = line.trim();
      if (key && !key.startsWith('#')) keys.push(key);
    }
  }
  return keys;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(req: { headers: IncomingHttpHeaders }): string | undefined {
  const authorization = req.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match) return match[1];
  }
  const header = req.headers['x-api-key'];
  return typeof header === 'string' && header.trim() !== '' ? header.trim() : undefined;
}

/** The service's keys, for checking a key presented some other way (e.g. the DeepStack dialect's `api_key` form field). */
export interface ApiKeyCheck {
  /** Whether any key is configured; without, every request passes. */
  readonly required: boolean;
  /** Whether `key` is one of the keys: constant-time, every key compared each time; '' and undefined never match. */
  accepts(key: string | undefined): boolean;
}

/** Reads the keys once (CVSERVE_API_KEYS and the keys file) and compares them as sha256 digests with timingSafeEqual. */
export function apiKeyCheck(config: Pick<Config, 'apiKeys' | 'apiKeysFile'>): ApiKeyCheck {
  const keys = loadApiKeys(config).map(digest);
  return {
    required: keys.length > 0,
    accepts(key) {
      if (key === undefined || key === '') return false;
      const given = digest(key);
      let match = false;
      for (const k of keys) match = timingSafeEqual(given, k) || match;
      return match;
    },
  };
}
