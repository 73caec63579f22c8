// Where everything lives on disk (docs/runtime.md, "On disk"). One
// object so that no module builds a .smke path by hand.

import { join, resolve } from 'node:path';

export interface Layout {
  projectDir: string;
  /** .smke/ of the project: state DB, logs, scratch, plan cache. */
  smkeDir: string;
  dbPath: string;
  /** Published entries: <storeDir>/<key>/. */
  storeDir: string;
  /** In-flight output directories; must be on the store's file system so publishing is a rename. */
  tmpDir: string;
  /** Instance locks; beside the store, so runs of different projects sharing a store see each other's. */
  locksDir: string;
  logsDir: string;
  scratchDir: string;
  plansDir: string;
  resultsDir: string;
}

/**
 * The default store is `.smke/store` with `.smke/tmp` and `.smke/locks`. A
 * shared store (`--store DIR`, SMKE_STORE) keeps its tmp and lock directories
 * inside DIR (`DIR/.tmp`, `DIR/.locks`): renames must not cross file systems,
 * and every project using the store must see the same locks. Keys are hex, so
 * the dot-names never collide with entries.
 */
export function layout(projectDir: string, store?: string): Layout {
  const p = resolve(projectDir);
  const smkeDir = join(p, '.smke');
  const shared = store ? resolve(p, store) : undefined;
  return {
    projectDir: p,
    smkeDir,
    dbPath: join(smkeDir, 'state.db'),
    storeDir: shared ?? join(smkeDir, 'store'),
    tmpDir: shared ? join(shared, '.tmp') : join(smkeDir, 'tmp'),
    locksDir: shared ? join(shared, '.locks') : join(smkeDir, 'locks'),
    logsDir: join(smkeDir, 'logs'),
    scratchDir: join(smkeDir, 'scratch'),
    plansDir: join(smkeDir, 'plans'),
    resultsDir: join(p, 'results'),
  };
}

/** `glue[cola]` -> a name safe for a file (logs, results links). */
export function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._,=-]+/g, '_');
}
