// Cache keys: the sha256 (hex) of an instance's fingerprint parts. A branded
// string, so that an instance id, a path or a run id cannot be passed where a
// key is expected: keys are made only by `keyOf` (called by ./fingerprint.ts)
// and by `parseCacheKey` where one is read back (state.db, job files, store
// directory names).

import { createHash } from 'node:crypto';

export type CacheKey = string & { readonly __brand: 'CacheKey' };

/**
 * Bump when the store's layout or the meaning of a key changes: old entries
 * then simply stop matching instead of being misread.
 */
export const STORE_FORMAT = 2;

const KEY_PATTERN = /^[0-9a-f]{64}$/;

/** The key of canonical fingerprint text. */
export function keyOf(canonical: string): CacheKey {
  return createHash('sha256').update(canonical).digest('hex') as CacheKey;
}

export function isCacheKey(s: unknown): s is CacheKey {
  return typeof s === 'string' && KEY_PATTERN.test(s);
}

/** A key read back from outside the process; `where` names the source for the error. */
export function parseCacheKey(s: unknown, where: string): CacheKey {
  if (isCacheKey(s)) return s;
  throw new Error(`${where}: ${JSON.stringify(s)} is not a cache key (64 lowercase hex digits); the file or database was not written by smke, or is damaged`);
}

/** A record of keys read back (a manifest's `upstream`), or undefined when one of its values is not a key. */
export function keyRecord(r: Record<string, unknown>): Record<string, CacheKey> | undefined {
  const out: Record<string, CacheKey> = {};
  for (const [name, v] of Object.entries(r)) {
    if (!isCacheKey(v)) return undefined;
    out[name] = v;
  }
  return out;
}
