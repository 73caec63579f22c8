// The no-op fast path. After a run that left every instance cached, a
// snapshot records what that conclusion depended on: the plan (its cached
// file's sha256), the digests of declared environment variables, and the stat
// signature of every input file and directory and of every file of every
// store entry used. The next run, if all of that is unchanged, knows every
// key and every entry is as before, and is done after stats alone — no
// hashing, no fingerprints, no SQLite reads. Any difference, and the run
// takes the ordinary path (which re-checks everything and writes a new
// snapshot). This is how a no-op over 10,000 instances stays close to ninja.

import { appendFileSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { envValueDigest, writePrivateFile } from './secrets.js';
import { STAT_FIELDS, statMatches, statNumbers } from './signature.js';
import { STORE_FORMAT } from './fingerprint.js';
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
 * The long lists are newline-separated lines in one string each, not nested
 * arrays, and the stat signatures are numbers in one base64 Float64Array:
 * parsing 30,000 small arrays, or building and comparing 30,000 signature
 * strings, cost more than the stats they describe.
 */
export interface Snapshot {
  format: 5;
  plan: string;
  /** A new store format makes every old key meaningless. */
  storeFormat: number;
  storeDir: string;
  /** Lines "instance id \t stage \t key", in plan order: enough to report without loading the plan. */
  instances: string;
  /** Digests of the declared environment variables (FingerprintParts.env): never their values. */
  env: Record<string, string | null>;
  /** Lines of absolute paths: every input file and directory the run observed. */
  inputs: string;
  /** Lines "key \t file \t file ...": every file of every store entry used, relative to the entry. */
  entries: string;
  /** base64 of a Float64Array: statNumbers() of each input, then of each entry file, in the order above. */
  stats: string;
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

/** The snapshot, or undefined when a name holds a tab or newline or a signature is incomplete (the ordinary path still works). */
export function makeSnapshot(src: SnapshotSource): Snapshot | undefined {
  const inputs: string[] = [];
  const entries: string[] = [];
  const numbers: number[] = [];
  const bad = (name: string): boolean => name.includes('\t') || name.includes('\n');
  try {
    for (const [p, sig] of src.inputs) {
      if (bad(p)) return undefined;
      inputs.push(p);
      numbers.push(...statNumbers(sig));
    }
    for (const [key, files] of src.entries) {
      if (bad(key) || files.some((f) => bad(f.path))) return undefined;
      entries.push([key, ...files.map((f) => f.path)].join('\t'));
      for (const f of files) numbers.push(...statNumbers(f.sig));
    }
  } catch {
    return undefined;
  }
  if (src.instances.some((l) => l.split('\t').length !== 3 || l.includes('\n'))) return undefined;
  return {
    format: 5,
    plan: src.plan,
    storeFormat: STORE_FORMAT,
    storeDir: src.storeDir,
    instances: src.instances.join('\n'),
    env: src.env,
    inputs: inputs.join('\n'),
    entries: entries.join('\n'),
    stats: Buffer.from(new Float64Array(numbers).buffer).toString('base64'),
    links: src.links,
    runId: src.runId,
  };
}

export function snapshotPath(lay: Layout, planDigest: string): string {
  return join(lay.plansDir, `${planDigest}.noop.json`);
}

export function writeSnapshot(lay: Layout, planDigest: string, snap: Snapshot): void {
  const path = snapshotPath(lay, planDigest);
  writePrivateFile(path, JSON.stringify(snap));
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
  for (const n of names) if (n.endsWith('.noop.json') && !live.has(n.slice(0, -'.noop.json'.length))) rmSync(join(lay.plansDir, n), { force: true });
}

/** The snapshot, if everything it recorded is unchanged; otherwise undefined. */
export function checkSnapshot(lay: Layout, planDigest: string, env: Record<string, string | undefined>): Snapshot | undefined {
  let snap: Snapshot;
  try {
    snap = JSON.parse(readFileSync(snapshotPath(lay, planDigest), 'utf8')) as Snapshot;
  } catch {
    return undefined;
  }
  if (snap.format !== 5 || snap.storeFormat !== STORE_FORMAT || snap.plan !== planDigest || snap.storeDir !== lay.storeDir) return undefined;
  for (const [n, v] of Object.entries(snap.env)) if (envValueDigest(env[n]) !== v) return undefined;
  const raw = Buffer.from(snap.stats, 'base64');
  if (raw.byteLength % 8 !== 0) return undefined;
  // A Float64Array view needs an 8-byte-aligned offset; a small Buffer may sit unaligned in Node's pool.
  const sigs = raw.byteOffset % 8 === 0 ? new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8) : new Float64Array(Uint8Array.from(raw).buffer);
  let at = 0;
  const unchanged = (path: string): boolean => {
    const st = statSync(path, { throwIfNoEntry: false });
    const ok = st !== undefined && at + STAT_FIELDS <= sigs.length && statMatches(st, sigs, at);
    at += STAT_FIELDS;
    return ok;
  };
  if (snap.inputs) for (const p of snap.inputs.split('\n')) if (!unchanged(p)) return undefined;
  if (snap.entries) {
    for (const line of snap.entries.split('\n')) {
      const [key, ...files] = line.split('\t');
      const dir = `${lay.storeDir}/${key}/`;
      for (const f of files) if (!unchanged(dir + f)) return undefined;
    }
  }
  if (at !== sigs.length) return undefined;
  for (const [dir, names] of snap.links) {
    let present: Set<string>;
    try {
      present = new Set(readdirSync(dir));
    } catch {
      return undefined;
    }
    for (const n of names) if (!present.has(n)) return undefined;
  }
  return snap;
}

/** Report a run answered by the no-op fast path (./noop-snapshot.ts), and record it as repeating the snapshot's run. */
export function answerNoop(snap: Snapshot, lay: Layout, bus: EventBus, file: string, profile: string | undefined, argv: string[], t0: number): RunSummary {
  const rows = snap.instances ? snap.instances.split('\n').map((l) => l.split('\t') as [string, string, string]) : [];
  const n = rows.length;
  journalNoopRun(lay, { file, profile: profile ?? null, argv, sameAs: snap.runId, cached: n, at: Date.now(), host: hostname(), pid: process.pid });
  for (const [id, stage, key] of rows) bus.emit({ type: 'planned', instance: id, stage, key, action: 'cached', reasons: [] });
  for (const [id, , key] of rows) bus.emit({ type: 'cached', instance: id, key });
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
