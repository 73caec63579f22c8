import { describe, expect, it } from 'vitest';
import { isCacheKey, keyOf, keyRecord, parseCacheKey, type CacheKey } from '../../src/runtime/cache-key.js';
import { checkEntry } from '../../src/runtime/store.js';

describe('CacheKey', () => {
  it('is made from fingerprint text, and read back only when it is one', () => {
    const key = keyOf('{"kind":"exec"}');
    expect(isCacheKey(key)).toBe(true);
    expect(parseCacheKey(String(key), 'state.db')).toBe(key);
    for (const notAKey of ['glue[cola]', '/tmp/store/x', 'A'.repeat(64), 'a'.repeat(63), '', 42, null]) {
      expect(isCacheKey(notAKey)).toBe(false);
      expect(() => parseCacheKey(notAKey, 'job file /tmp/j.json')).toThrow(/^job file \/tmp\/j\.json: .* is not a cache key \(64 lowercase hex digits\)/);
    }
    expect(keyRecord({ up: key })).toEqual({ up: key });
    expect(keyRecord({ up: key, other: 'glue[cola]' })).toBeUndefined();
  });

  it('cannot be given an instance id or a path where a key is expected', () => {
    const id: string = 'glue[cola]';
    // @ts-expect-error -- a plain string is not a CacheKey
    const notChecked = (): unknown => checkEntry('/nonexistent', id, undefined as never);
    const key: CacheKey = keyOf('x');
    const asString: string = key; // a key still reads as a string (paths, messages)
    expect(typeof notChecked).toBe('function');
    expect(asString).toHaveLength(64);
  });
});
