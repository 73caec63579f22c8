// The no-op fast path. After a run that left every instance cached, a
// snapshot records what that conclusion depended on: the plan (its cached
// file's sha256), the digests of declared environment variables, and the stat
// signature of every input file and directory and of every file of every
// store entry used (the stat list, ./stat-list.ts, a file of its own beside
// the snapshot). The next run, if all of that is unchanged, knows every key
// and every entry is as before, and is done after stats alone — no hashing,
// no fingerprints, no SQLite reads. Any difference, and the run takes the
// ordinary path (which re-checks everything and writes a new snapshot). This
// is how a no-op over 10,000 instances stays close to ninja.

import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { envValueDigest, writePrivateFile } from './secrets.js';
import { statValues } from './signature.js';
import { checkStatList, encodeStatList, type StatListEntry } from './stat-list.js';
import { earlyCheckHint, earlyCheckHintPath } from './early-check.js';
import { STORE_FORMAT } from './cache-key.js';
import type { Layout } from './layout.js';
import type { EventBus } from './events.js';
import type { RunSummary } from './orchestrate.js';

/** A no-op run answered by the fast path (./noop-snapshot.ts), waiting in the journal. */
export interface NoopRunRecord {
  file: string;
  profile: string | null;
  argv: string[];
  sameAs: number;
  cached: number;
  at: number;
  host: string;
  pid: number;
}

/** The journal of fast-path runs, beside the DB. */
export function journalPath(dbPath: string): string {
  return join(dirname(dbPath), 'noop-runs.jsonl');
}

/**
 * Small: the paths and their stat values are in the stat list, a binary file
 * beside this one that the native checker reads directly (./stat-list.ts),
 * and the instances in a text file of their own, read only when a caller
 * wants an event per instance (--json): a plain no-op needs their number.
 */
export interface Snapshot {
  format: 6;
  plan: string;
  /** A new store format makes every old key meaningless. */
  storeFormat: number;
  storeDir: string;
  /** How many instances the plan has (each one's id, stage and key: the instance list beside this file). */
  count: number;
  /** Digests of the declared environment variables (FingerprintParts.env): never their values. */
  env: Record<string, string | null>;
  /** The id (hex) the stat list and the instance list beside this file must carry: lists written for another snapshot are not this one's. */
  statList: string;
  /** results/ directories and the link names each must contain. */
  links: [string, string[]][];
  /** The run whose conclusion this is (history and gc refer to it). */
  runId: number;
}

/** What a snapshot is made from: the signatures the run itself observed, never a fresh stat (which could bless a file changed since). */
export interface SnapshotSource {
  plan: string;
  storeDir: string;
  instances: string[];
  env: Record<string, string | null>;
  /** Input path -> signature, as the digester observed it. */
  inputs: Iterable<[string, string]>;
  /** Entry key -> its files (path relative to the entry, signature). */
  entries: Iterable<[string, { path: string; sig: string }[]]>;
  links: [string, string[]][];
  runId: number;
}

export interface MadeSnapshot {
  snapshot: Snapshot;
  statList: Buffer;
  instances: string;
}

/**
 * The snapshot and its stat list: every input the run observed (absolute
 * paths), then every file of every entry used (relative to the store). None
 * when an instance line would hold a tab or newline or a signature is
 * incomplete (the ordinary path still works).
 */
export function makeSnapshot(src: SnapshotSource): MadeSnapshot | undefined {
  const list: StatListEntry[] = [];
  try {
    for (const [path, sig] of src.inputs) list.push({ path, inStore: false, values: statValues(sig) });
    for (const [key, files] of src.entries) for (const f of files) list.push({ path: `${key}/${f.path}`, inStore: true, values: statValues(f.sig) });
  } catch {
    return undefined;
  }
  if (src.instances.some((l) => l.split('\t').length !== 3 || l.includes('\n'))) return undefined;
  const id = randomBytes(8);
  return {
    snapshot: {
      format: 6,
      plan: src.plan,
      storeFormat: STORE_FORMAT,
      storeDir: src.storeDir,
      count: src.instances.length,
      env: src.env,
      statList: id.toString('hex'),
      links: src.links,
      runId: src.runId,
    },
    statList: encodeStatList(id, list),
    // The id first, then lines "instance id \t stage \t key" in plan order: enough to report without loading the plan.
    instances: [id.toString('hex'), ...src.instances].join('\n'),
  };
}

export function snapshotPath(lay: Layout, planDigest: string): string {
  return join(lay.plansDir, `${planDigest}.noop.json`);
}

export function statListPath(lay: Layout, planDigest: string): string {
  return join(lay.plansDir, `${planDigest}.noop.stat`);
}

function instanceListPath(lay: Layout, planDigest: string): string {
  return join(lay.plansDir, `${planDigest}.noop.instances`);
}

/**
 * The lists first: a snapshot is only ever read beside lists at least as new (and the id tells which).
 * Then, when the run's arguments are known, the hint that lets the next run with the same ones
 * begin the stat check as it starts (./early-check.ts).
 */
export function writeSnapshot(lay: Layout, planDigest: string, made: MadeSnapshot, argv?: string[]): void {
  writePrivateFile(statListPath(lay, planDigest), made.statList);
  writePrivateFile(instanceListPath(lay, planDigest), made.instances);
  writePrivateFile(snapshotPath(lay, planDigest), JSON.stringify(made.snapshot));
  if (argv) writeEarlyCheckHint(lay, planDigest, argv);
}

/** The hint that lets the next `smke run` with these arguments (after `run`) begin the stat check of this plan's snapshot as it starts. */
export function writeEarlyCheckHint(lay: Layout, planDigest: string, argv: string[]): void {
  writePrivateFile(earlyCheckHintPath(lay.plansDir), earlyCheckHint(argv, statListPath(lay, planDigest), lay.storeDir));
}

/** Remove snapshots of plans no plan-cache head refers to any more (gc). */
export function dropStaleSnapshots(lay: Layout): void {
  let names: string[];
  try {
    names = readdirSync(lay.plansDir);
  } catch {
    return;
  }
  const live = new Set<string>();
  for (const n of names) {
    if (!n.endsWith('.head.json')) continue;
    try {
      live.add((JSON.parse(readFileSync(join(lay.plansDir, n), 'utf8')) as { planDigest: string }).planDigest);
    } catch {
      /* unreadable head */
    }
  }
  for (const n of names) {
    const m = /^(.*)\.noop\.(?:json|stat|instances)$/.exec(n);
    if (m && !live.has(m[1]!)) rmSync(join(lay.plansDir, n), { force: true });
  }
}

/** A snapshot found valid, with its instances when they were asked for. */
export interface CheckedSnapshot {
  snapshot: Snapshot;
  /** [instance id, stage, key] in plan order; only with `instances: true`. */
  instances?: [string, string, string][];
}

/**
 * The snapshot, if everything it recorded is unchanged; otherwise undefined.
 * `instances: true` reads the instance list too (a missing or mismatched one
 * makes the snapshot unusable); `native: false` checks the stat list in Node
 * even where the native checker was built.
 */
export async function checkSnapshot(
  lay: Layout,
  planDigest: string,
  env: Record<string, string | undefined>,
  o: { native?: boolean; instances?: boolean } = {},
): Promise<CheckedSnapshot | undefined> {
  let snap: Snapshot;
  try {
    snap = JSON.parse(readFileSync(snapshotPath(lay, planDigest), 'utf8')) as Snapshot;
  } catch {
    return undefined;
  }
  if (snap.format !== 6 || snap.storeFormat !== STORE_FORMAT || snap.plan !== planDigest || snap.storeDir !== lay.storeDir) return undefined;
  if (typeof snap.statList !== 'string' || !/^[0-9a-f]{16}$/.test(snap.statList) || !Number.isInteger(snap.count)) return undefined;
  // Started before the rest is checked: the native checker stats on the other cores meanwhile.
  const stats = checkStatList(statListPath(lay, planDigest), lay.storeDir, o);
  for (const [n, v] of Object.entries(snap.env)) if (envValueDigest(env[n]) !== v) return undefined;
  for (const [dir, names] of snap.links) {
    let present: Set<string>;
    try {
      present = new Set(readdirSync(dir));
    } catch {
      return undefined;
    }
    for (const n of names) if (!present.has(n)) return undefined;
  }
  let instances: [string, string, string][] | undefined;
  if (o.instances) {
    instances = readInstances(instanceListPath(lay, planDigest), snap);
    if (!instances) return undefined;
  }
  // The list must be this snapshot's (a concurrent run may have replaced it since), and unchanged.
  const verdict = await stats;
  if (verdict.id !== snap.statList || !verdict.unchanged) return undefined;
  return { snapshot: snap, ...(instances && { instances }) };
}

function readInstances(path: string, snap: Snapshot): [string, string, string][] | undefined {
  let lines: string[];
  try {
    lines = readFileSync(path, 'utf8').split('\n');
  } catch {
    return undefined;
  }
  if (lines.shift() !== snap.statList) return undefined;
  const rows = lines.map((l) => l.split('\t'));
  if (rows.length !== snap.count || rows.some((r) => r.length !== 3)) return undefined;
  return rows as [string, string, string][];
}

/**
 * Report a run answered by the no-op fast path (./noop-snapshot.ts), and
 * record it as repeating the snapshot's run: one `noop` event, then an event
 * per instance if the snapshot was checked with its instances.
 */
export function answerNoop(
  checked: CheckedSnapshot,
  lay: Layout,
  bus: EventBus,
  file: string,
  profile: string | undefined,
  argv: string[],
  t0: number,
): RunSummary {
  const { snapshot: snap, instances } = checked;
  const n = snap.count;
  journalNoopRun(lay, { file, profile: profile ?? null, argv, sameAs: snap.runId, cached: n, at: Date.now(), host: hostname(), pid: process.pid });
  bus.emit({ type: 'noop', count: n, sameAs: snap.runId });
  for (const [id, stage, key] of instances ?? []) bus.emit({ type: 'planned', instance: id, stage, key, action: 'cached', reasons: [] });
  for (const [id, , key] of instances ?? []) bus.emit({ type: 'cached', instance: id, key });
  const s = { exitCode: 0, ran: 0, cached: n, failed: 0, skipped: 0, cancelled: 0, seconds: (performance.now() - t0) / 1000 };
  bus.emit({ type: 'summary', ...s, dryRun: false });
  return s;
}

/**
 * A fast-path run is appended to a journal instead of the state DB: loading
 * and opening SQLite (and its checkpoint on close) would be a tenth of the
 * whole no-op. The next StateDb opened imports the journal into `runs`.
 */
function journalNoopRun(lay: Layout, rec: NoopRunRecord): void {
  appendFileSync(journalPath(lay.dbPath), `${JSON.stringify(rec)}\n`, { mode: 0o600 });
}
