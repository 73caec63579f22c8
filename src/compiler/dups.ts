// Finding repeated keys without allocating a Map for every stage: a 100k-stage
// compile checks a few entries per stage hundreds of thousands of times, and
// a Map per check was a measurable share of its garbage.

/** Up to this many items a nested loop is cheaper than hashing (and allocates no Map). */
export const SMALL = 16;

/**
 * Calls `onDuplicate(item, first)` for every item whose key an earlier item
 * already had, and returns those later items (to be skipped), or undefined
 * when every key is unique.
 */
export function duplicates<T>(items: readonly T[], key: (item: T) => string, onDuplicate: (item: T, first: T) => void): Set<T> | undefined {
  let dups: Set<T> | undefined;
  const found = (item: T, first: T) => {
    onDuplicate(item, first);
    (dups ??= new Set()).add(item);
  };
  if (items.length <= SMALL) {
    // Each key once: a key may be built (a template string), and the nested loop would build it again and again.
    const keys = items.map(key);
    for (let i = 1; i < items.length; i++) {
      const k = keys[i];
      for (let j = 0; j < i; j++) {
        if (keys[j] === k) {
          found(items[i]!, items[j]!);
          break;
        }
      }
    }
    return dups;
  }
  const seen = new Map<string, T>();
  for (const item of items) {
    const k = key(item);
    const first = seen.get(k);
    if (first === undefined) seen.set(k, item);
    else found(item, first);
  }
  return dups;
}
