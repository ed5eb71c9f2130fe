import { createHash } from 'node:crypto';
import type { Answer } from './answer.js';

/**
 * A size-bounded LRU of finished answers, keyed by the sha256 of the image bytes together with
 * everything else that shapes the answer: the route, its validated parameters, the Accept header
 * and how the image came (JSON requests get JSON back). Off unless CVSERVE_RESPONSE_CACHE_MB > 0.
 * Every built-in route is deterministic: the same bytes and parameters give the same answer.
 */
export class ResponseCache {
  private readonly entries = new Map<string, { answer: Answer; bytes: number }>();
  private used = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  /** The key of one request's answer. Parameters are serialised with sorted keys so their order does not matter. */
  static key(route: string, params: Record<string, unknown>, accept: string, source: string, image: Uint8Array): string {
    const canonical = JSON.stringify(params, Object.keys(params).sort());
    return createHash('sha256').update(`${route}\0${canonical}\0${accept}\0${source}\0`).update(image).digest('hex');
  }

  get(key: string): Answer | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    // Most recently used last: Map keeps insertion order, so re-insert.
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.hits++;
    return entry.answer;
  }

  set(key: string, answer: Answer): void {
    const bytes = answer.kind === 'image' ? answer.bytes.length : Buffer.byteLength(JSON.stringify(answer.body));
    // An answer larger than an eighth of the cache would evict too much for one entry.
    if (bytes > this.maxBytes / 8) return;
    const old = this.entries.get(key);
    if (old) {
      this.used -= old.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, { answer, bytes });
    this.used += bytes;
    for (const [k, e] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(k);
      this.used -= e.bytes;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.used;
  }
}
