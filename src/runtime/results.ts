// What the results/ links point to. gc never removes an entry a link names,
// whatever the state database says (it may be new, rebuilt or wrong): a user
// finds their outputs through these links.

import { lstatSync, readdirSync, realpathSync } from 'node:fs';
import { SetupError } from './errors.js';
import { join, relative, sep } from 'node:path';
import { isCacheKey, type CacheKey } from './cache-key.js';
import type { Layout } from './layout.js';

/** Keys of the store entries that results/<stage> and results/<stage>/<cell> links point into. */
export function resultTargets(lay: Pick<Layout, 'resultsDir' | 'storeDir'>): Set<CacheKey> {
  const keys = new Set<CacheKey>();
  let store: string;
  try {
    store = realpathSync(lay.storeDir);
  } catch {
    return keys; // no store: nothing to protect
  }
  const walk = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    } // absent, or not a directory
    for (const n of names) {
      const p = join(dir, n);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (depth < 2) walk(p, depth + 1);
        continue;
      }
      if (!st.isSymbolicLink()) continue;
      let target: string;
      try {
        target = realpathSync(p);
      } catch {
        continue;
      } // dangling: its entry is gone already
      const rel = relative(store, target);
      const entry = rel.split(sep)[0];
      if (rel && !rel.startsWith('..') && !rel.startsWith(sep) && isCacheKey(entry)) keys.add(entry);
    }
  };
  walk(lay.resultsDir, 0);
  return keys;
}

/**
 * Before a run starts anything: results/ must be a directory (or absent), or
 * the first finished stage could not be linked. Nothing in it is replaced
 * unless smke made it (./store.ts linkResult).
 */
export function checkResultsDir(resultsDir: string): void {
  let st;
  try {
    st = lstatSync(resultsDir);
  } catch {
    return;
  }
  if (!st.isDirectory()) {
    throw new SetupError(
      `${resultsDir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'a file'}, not a directory: smke keeps links to each stage's outputs there; move it away and rerun`,
    );
  }
}
