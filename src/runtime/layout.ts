// Where everything lives on disk (docs/runtime.md, "On disk"). One
// object so that no module builds a .smke path by hand.

import { createHash } from 'node:crypto';
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

/** Longest results/ cell name, in characters (ASCII after encoding): file names are at most 255 bytes. */
const MAX_CELL = 200;

/** One value of a cell name: every character outside [A-Za-z0-9_.=+-] as %XX per UTF-8 byte. */
function encodeCellValue(v: unknown): string {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  // `%` alone never comes out of the encoding below: it stands for the empty string.
  if (text === '') return '%';
  return text.replace(/[^A-Za-z0-9_.=+-]/gu, (c) => {
    const code = c.codePointAt(0)!;
    // A lone surrogate has no UTF-8 bytes of its own (it would become U+FFFD, like any other).
    if (code >= 0xd800 && code <= 0xdfff) return `%u${code.toString(16).padStart(4, '0')}`;
    return [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  });
}

/**
 * The results/<stage>/ link name of a matrix cell, from its axis values in
 * axis order (`glue[cola,3]` -> `cola,3`), or undefined for a plain stage.
 * Safe by construction whatever the values are: each value is encoded
 * (`,` `/` `%` NUL and the rest), so the name is one path segment, distinct
 * cells get distinct names, and a leading `.` is encoded too (never `.`,
 * `..` or a hidden file). A name too long for a file system keeps its start
 * and ends in `~` and a digest of the whole (`~` is never otherwise produced).
 */
export function cellName(inst: { matrix: Record<string, unknown> }): string | undefined {
  const values = Object.values(inst.matrix);
  if (values.length === 0) return undefined;
  let name = values.map(encodeCellValue).join(',');
  if (name.startsWith('.')) name = `%2E${name.slice(1)}`;
  if (name.length > MAX_CELL) name = `${name.slice(0, MAX_CELL - 17)}~${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
  return name;
}
