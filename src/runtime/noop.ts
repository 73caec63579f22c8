// The no-op fast path. After a run that left every instance cached, a
// snapshot records what that conclusion depended on: the plan (its cached
// file's sha256), the values of declared environment variables, and the stat
// signature of every input file and directory and of every file of every
// store entry used. The next run, if all of that is unchanged, knows every
// key and every entry is as before, and is done after stats alone — no
// hashing, no fingerprints, no SQLite reads. Any difference, and the run
// takes the ordinary path (which re-checks everything and writes a new
// snapshot). This is how a no-op over 10,000 instances stays close to ninja.

import { readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../compiler/plan.js';
import { signature } from './digest.js';
import { STORE_FORMAT } from './fingerprint.js';
import type { Layout } from './layout.js';

export interface Snapshot {
  format: 1;
  plan: string;
  /** A new store format makes every old key meaningless. */
  storeFormat: number;
  storeDir: string;
  /** Keys aligned with plan.instances. */
  keys: string[];
  env: Record<string, string | null>;
  /** [path, signature] of every input file/dir and every store entry file. */
  stats: [string, string][];
  /** results/ directories and the link names each must contain. */
  links: [string, string[]][];
  /** The run whose conclusion this is (history and gc refer to it). */
  runId: number;
}

export function snapshotPath(lay: Layout, planDigest: string): string {
  return join(lay.plansDir, `${planDigest}.noop.json`);
}

export function writeSnapshot(lay: Layout, planDigest: string, snap: Snapshot): void {
  const path = snapshotPath(lay, planDigest);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(snap));
  renameSync(tmp, path);
}

export function dropSnapshot(lay: Layout, planDigest: string): void {
  rmSync(snapshotPath(lay, planDigest), { force: true });
}

/** The snapshot, if everything it recorded is unchanged; otherwise undefined. */
export function checkSnapshot(
  lay: Layout,
  plan: Plan,
  planDigest: string,
  env: Record<string, string | undefined>,
): Snapshot | undefined {
  let snap: Snapshot;
  try {
    snap = JSON.parse(readFileSync(snapshotPath(lay, planDigest), 'utf8')) as Snapshot;
  } catch {
    return undefined;
  }
  if (snap.format !== 1 || snap.storeFormat !== STORE_FORMAT || snap.plan !== planDigest || snap.storeDir !== lay.storeDir || snap.keys.length !== plan.instances.length) return undefined;
  for (const [n, v] of Object.entries(snap.env)) if ((env[n] ?? null) !== v) return undefined;
  for (const [path, sig] of snap.stats) {
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    if (!st || signature(st) !== sig) return undefined;
  }
  for (const [dir, names] of snap.links) {
    let present: Set<string>;
    try { present = new Set(readdirSync(dir)); } catch { return undefined; }
    for (const n of names) if (!present.has(n)) return undefined;
  }
  return snap;
}
