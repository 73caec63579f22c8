// The state database (.smke/state.db): runs, stage attempts, the stat cache,
// the last fingerprint of every instance and which store entries runs used.
// SQLite in WAL mode so that `smke status` can read while a run writes, and
// two runs sharing a project serialise their writes instead of failing.

import Database from 'better-sqlite3';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseCacheKey, type CacheKey } from './cache-key.js';
import { describeFailure, type AttemptFailure } from './attempt-failure.js';
import type { StatCache, StatRecord } from './digest.js';
import { pidAlive } from './locks.js';
import { journalPath, type NoopRunRecord } from './noop-snapshot.js';

type DB = Database.Database;

/**
 * Schema migrations, applied in order; PRAGMA user_version is the index of
 * the last one applied. Never edit a released step: append a new one.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE runs (
     id INTEGER PRIMARY KEY,
     file TEXT NOT NULL, profile TEXT, argv TEXT NOT NULL,
     host TEXT NOT NULL, pid INTEGER NOT NULL,
     started_ms INTEGER NOT NULL, finished_ms INTEGER,
     status TEXT NOT NULL,            -- running | succeeded | failed | cancelled
     ran INTEGER NOT NULL DEFAULT 0, cached INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE attempts (
     id INTEGER PRIMARY KEY,
     run_id INTEGER NOT NULL REFERENCES runs(id),
     instance TEXT NOT NULL, stage TEXT NOT NULL, key TEXT NOT NULL,
     attempt INTEGER NOT NULL,
     status TEXT NOT NULL,            -- running | succeeded | failed | cancelled
     reason TEXT, error TEXT, exit_code INTEGER, signal TEXT,
     started_ms INTEGER NOT NULL, finished_ms INTEGER,
     log_path TEXT
   );
   CREATE INDEX attempts_instance ON attempts(instance, id);
   CREATE INDEX attempts_stage ON attempts(stage, id);
   CREATE TABLE stat_cache (
     path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns TEXT NOT NULL, ino TEXT NOT NULL, digest TEXT NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE last_fingerprint (
     instance TEXT PRIMARY KEY, stage TEXT NOT NULL, key TEXT NOT NULL,
     fingerprint TEXT NOT NULL,       -- JSON: parts, symbolic params, upstream keys
     run_id INTEGER NOT NULL
   ) WITHOUT ROWID;
   -- Store entries this project knows, with the stat signature of their files
   -- at publish time: lets a no-op run trust an entry after a few stats.
   CREATE TABLE entries (
     key TEXT PRIMARY KEY, instance TEXT NOT NULL, files TEXT NOT NULL, last_run INTEGER NOT NULL
   ) WITHOUT ROWID;`,
  // 2: a run that took the no-op fast path used exactly the entries of the
  // run it repeated; `same_as` says which, so gc --keep-last counts it right.
  `ALTER TABLE runs ADD COLUMN same_as INTEGER REFERENCES runs(id);`,
  // 3: ctime joins the stat signature (./signature.ts). Rows from before have
  // none, so each such file is read once more, then cached with its ctime.
  `ALTER TABLE stat_cache ADD COLUMN ctime_ns TEXT NOT NULL DEFAULT '';`,
  // 4: when this database began. gc removes an entry it has no record of only
  // when the entry is younger (a run died before recording it): an older one
  // may be known to a database that was lost, so nothing proves it unused.
  `CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
   INSERT INTO meta (name, value) VALUES ('created_ms',
     COALESCE((SELECT MIN(started_ms) FROM runs), CAST(unixepoch('subsec') * 1000 AS INTEGER)));`,
  // 5: every instance a run used (ran, reused or cached) with its key, so two
  // runs can be compared (`smke diff`) long after last_fingerprint moved on.
  `CREATE TABLE run_instances (
     run_id INTEGER NOT NULL REFERENCES runs(id), instance TEXT NOT NULL, key TEXT NOT NULL,
     ran INTEGER NOT NULL,            -- 1: executed in this run; 0: taken from the store
     PRIMARY KEY (run_id, instance)
   ) WITHOUT ROWID;`,
  // 6: why an attempt failed, as data (./attempt-failure.ts, JSON). `error`
  // keeps the rendered text; rows from before have only that.
  `ALTER TABLE attempts ADD COLUMN failure TEXT;`,
  // 7: entries recorded before the store's file system was synced carry the
  // boot they were recorded in (./durability.ts); NULL once synced. Rows from
  // before were synced before their rename.
  `ALTER TABLE entries ADD COLUMN unsynced_boot TEXT;`,
];

/** SQLite's codes for a file that is not (or no longer) a whole database. */
const CORRUPT_CODES = /^SQLITE_(CORRUPT|NOTADB)/;

/** The database file is damaged: what is wrong, in words (./staterepair.ts moves it aside and rebuilds). */
export class StateDbDamaged extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`the state database ${path} ${problem}`);
    this.name = 'StateDbDamaged';
  }
}

/** A SQLite error that means the file is damaged, as a StateDbDamaged; undefined for any other error. */
export function damaged(path: string, e: unknown): StateDbDamaged | undefined {
  if (e instanceof StateDbDamaged) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !CORRUPT_CODES.test(code)) return undefined;
  return new StateDbDamaged(path, `is damaged (${code}: ${(e as Error).message})`);
}

/**
 * Cheap checks of the file header (no query reads a damaged page before
 * them): the magic string, and a size that fits the page count the header
 * claims. A truncated database otherwise opens fine and fails on some later
 * query, in the middle of a run.
 */
export function dbFileProblem(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined; // absent: a new database is created
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return undefined; // SQLite treats an empty file as a new database
    const h = Buffer.alloc(100);
    const n = readSync(fd, h, 0, 100, 0);
    if (n < 100 || h.toString('latin1', 0, 16) !== 'SQLite format 3\0') return 'is not an SQLite database (its header is wrong)';
    const raw = h.readUInt16BE(16);
    const pageSize = raw === 1 ? 65536 : raw;
    if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) return 'has a damaged header (page size)';
    // The page count in the header is valid only when the two change counters agree.
    const pages = h.readUInt32BE(24) === h.readUInt32BE(92) ? h.readUInt32BE(28) : 0;
    if (size % pageSize !== 0 || size < pages * pageSize) return `is truncated (${size} bytes; its header says ${pages * pageSize})`;
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export interface RunRow {
  id: number;
  file: string;
  profile: string | null;
  argv: string;
  host: string;
  pid: number;
  started_ms: number;
  finished_ms: number | null;
  status: string;
  ran: number;
  cached: number;
  failed: number;
  same_as: number | null;
}

export interface AttemptRow {
  id: number;
  run_id: number;
  instance: string;
  stage: string;
  key: string;
  attempt: number;
  status: string;
  reason: string | null;
  error: string | null;
  exit_code: number | null;
  signal: string | null;
  started_ms: number;
  finished_ms: number | null;
  log_path: string | null;
  /** JSON of an AttemptFailure (./attempt-failure.ts failureOfRow reads it); null on success and in rows from before it was kept. */
  failure: string | null;
}

export interface LastFingerprintRow {
  instance: string;
  stage: string;
  key: CacheKey;
  fingerprint: string;
  run_id: number;
}

/** One file of a store entry as published: enough to notice it changed without reading it. */
export interface EntryFile {
  path: string;
  size: number;
  mtimeNs: string;
  ino: string;
  /** Absent in rows recorded before ctime joined the signature: such an entry is re-digested once. */
  ctimeNs?: string;
  digest: string;
}

/** A store entry this project recorded. */
export interface KnownEntry {
  instance: string;
  files: EntryFile[];
  lastRun: number;
  /** The boot it was recorded in, while the store is not known synced since (./durability.ts); null once it is. */
  unsyncedBoot: string | null;
}

export class StateDb implements StatCache {
  readonly db: DB;
  private readonly stmts;
  /**
   * Statements run once or more per attempt, compiled on first use: preparing
   * one costs more than running it (an insert into a WAL database with
   * synchronous = NORMAL does not fsync), and a sweep runs thousands.
   */
  private readonly prepared = new Map<string, Database.Statement>();
  private stmt(sql: string): Database.Statement {
    let st = this.prepared.get(sql);
    if (!st) this.prepared.set(sql, (st = this.db.prepare(sql)));
    return st;
  }
  /** Created by this open (no schema before): its records start now. */
  fresh = false;

  /**
   * Throws StateDbDamaged when the file is not a whole database. `exclusive`
   * locks out every other process but needs no shared-memory file, which
   * cannot be created on a full disk: gc opens it so to free space.
   */
  constructor(path: string, opts: { exclusive?: boolean } = {}) {
    const problem = dbFileProblem(path);
    if (problem) throw new StateDbDamaged(path, problem);
    this.db = new Database(path);
    try {
      if (opts.exclusive) this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma('journal_mode = WAL');
      // Runs sharing a project write from several processes: wait instead of SQLITE_BUSY.
      this.db.pragma('busy_timeout = 10000');
      // WAL + NORMAL: a crash may lose the last transactions but never corrupts;
      // the store, not the DB, is the source of truth for results.
      this.db.pragma('synchronous = NORMAL');
      this.migrate();
      // The journal waits for the next ordinary open: importing it writes.
      if (!opts.exclusive) this.importJournal(path);
    } catch (e) {
      this.db.close();
      throw damaged(path, e) ?? e;
    }
    const db = this.db;
    this.stmts = {
      statPut: db.prepare('INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, ino, ctime_ns, digest) VALUES (?, ?, ?, ?, ?, ?)'),
      // Once per instance of every run that does not take the no-op fast path: prepared once.
      runInstancePut: db.prepare('INSERT OR REPLACE INTO run_instances (run_id, instance, key, ran) VALUES (?, ?, ?, ?)'),
    };
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    this.fresh = current === 0;
    if (current > MIGRATIONS.length) {
      throw new Error(`the state database was written by a newer smke (schema ${current}, this one knows ${MIGRATIONS.length}): upgrade smke`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db
        .transaction(() => {
          this.db.exec(MIGRATIONS[v]!);
          this.db.pragma(`user_version = ${v + 1}`);
        })
        .immediate();
    }
  }

  close(): void {
    this.db.close();
  }

  /** When this database began (ms): gc's limit for entries it has no record of. */
  createdMs(): number {
    return Number(this.db.prepare(`SELECT value FROM meta WHERE name = 'created_ms'`).pluck().get());
  }

  // --- stat cache ---------------------------------------------------------
  // Writes are buffered and flushed in one transaction: a first digest of
  // 100,000 files must not cost 100,000 commits.
  private pendingStats: [string, StatRecord][] = [];

  // Read in one query on first use: re-checking 100,000 unchanged files must
  // cost 100,000 stats and map lookups, not 100,000 SQLite round trips.
  private statRows: Map<string, StatRecord> | undefined;

  get(path: string): StatRecord | undefined {
    if (!this.statRows) {
      this.statRows = new Map();
      // One string from SQLite, split here: ~2x faster than 100,000 row
      // objects. Paths cannot contain newlines or tabs in practice; a row
      // that did would only miss the cache.
      const all = this.db
        .prepare(
          `SELECT group_concat(path || char(9) || 'f:' || size || ':' || mtime_ns || ':' || ino || ':' || ctime_ns || char(9) || digest, char(10)) FROM stat_cache`,
        )
        .pluck()
        .get() as string | null;
      if (all) {
        for (const line of all.split('\n')) {
          const i = line.indexOf('\t');
          const j = line.indexOf('\t', i + 1);
          this.statRows.set(line.slice(0, i), { sig: line.slice(i + 1, j), digest: line.slice(j + 1) });
        }
      }
    }
    return this.statRows.get(path);
  }

  put(path: string, rec: StatRecord): void {
    this.statRows?.set(path, rec);
    this.pendingStats.push([path, rec]);
    if (this.pendingStats.length >= 5000) this.flushStats();
  }

  flushStats(): void {
    if (this.pendingStats.length === 0) return;
    const rows = this.pendingStats;
    this.pendingStats = [];
    this.db.transaction(() => {
      for (const [p, r] of rows) {
        const [, size, mtimeNs, ino, ctimeNs] = r.sig.split(':');
        this.stmts.statPut.run(p, Number(size), mtimeNs, ino, ctimeNs ?? '', r.digest);
      }
    })();
  }

  // --- runs and attempts --------------------------------------------------
  startRun(file: string, profile: string | undefined, argv: string[]): number {
    const r = this.db
      .prepare(`INSERT INTO runs (file, profile, argv, host, pid, started_ms, status) VALUES (?, ?, ?, ?, ?, ?, 'running')`)
      .run(file, profile ?? null, JSON.stringify(argv), hostname(), process.pid, Date.now());
    return Number(r.lastInsertRowid);
  }

  /**
   * Move fast-path runs from the journal into `runs`, each pointing at the run
   * whose entries it used (same_as). The journal is claimed by a rename, so two
   * processes opening the DB never import it twice.
   */
  private importJournal(dbPath: string): void {
    const journal = journalPath(dbPath);
    if (!existsSync(journal)) return;
    const claimed = `${journal}.${process.pid}.importing`;
    try {
      renameSync(journal, claimed);
    } catch {
      return; // another process claimed it
    }
    const insert = this.db.prepare(`INSERT INTO runs (file, profile, argv, host, pid, started_ms, finished_ms, status, cached, same_as)
                                     VALUES (?, ?, ?, ?, ?, ?, ?, 'succeeded', ?, ?)`);
    const lines = readFileSync(claimed, 'utf8').split('\n');
    this.db.transaction(() => {
      for (const line of lines) {
        if (!line) continue;
        let r: NoopRunRecord;
        try {
          r = JSON.parse(line) as NoopRunRecord;
        } catch {
          continue;
        } // a torn last line of a killed run
        insert.run(r.file, r.profile, JSON.stringify(r.argv), r.host, r.pid, r.at, r.at, r.cached, r.sameAs);
      }
    })();
    unlinkSync(claimed);
  }

  finishRun(id: number, status: string, counts: { ran: number; cached: number; failed: number }): void {
    this.stmt('UPDATE runs SET finished_ms = ?, status = ?, ran = ?, cached = ?, failed = ? WHERE id = ?').run(
      Date.now(),
      status,
      counts.ran,
      counts.cached,
      counts.failed,
      id,
    );
  }

  /** `startedMs`: when the attempt started, if not now (a deferred insert). */
  startAttempt(a: {
    runId: number;
    instance: string;
    stage: string;
    key: CacheKey;
    attempt: number;
    reason: string;
    logPath: string;
    startedMs?: number;
  }): number {
    const r = this.stmt(
      `INSERT INTO attempts (run_id, instance, stage, key, attempt, status, reason, started_ms, log_path)
                VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)`,
    ).run(a.runId, a.instance, a.stage, a.key, a.attempt, a.reason, a.startedMs ?? Date.now(), a.logPath);
    return Number(r.lastInsertRowid);
  }

  /** With a `failure`, `error` is its text (describeFailure) unless given. */
  finishAttempt(id: number, status: string, detail: { failure?: AttemptFailure; error?: string; exitCode?: number | null; signal?: string | null }): void {
    const error = detail.error ?? (detail.failure && describeFailure(detail.failure));
    this.stmt('UPDATE attempts SET status = ?, error = ?, failure = ?, exit_code = ?, signal = ?, finished_ms = ? WHERE id = ?').run(
      status,
      error ?? null,
      detail.failure ? JSON.stringify(detail.failure) : null,
      detail.exitCode ?? null,
      detail.signal ?? null,
      Date.now(),
      id,
    );
  }

  /** Records that a run used `key` for `instance` (call inside the run's transactions: one row per instance). */
  recordRunInstance(runId: number, instance: string, key: CacheKey, ran: boolean): void {
    this.stmts.runInstancePut.run(runId, instance, key, ran ? 1 : 0);
  }

  /**
   * The instances a run used, with their keys. A fast-path no-op run used
   * exactly those of the run it repeated (same_as). Runs recorded before this
   * table existed have none: undefined.
   */
  runInstances(runId: number): Map<string, { key: CacheKey; ran: boolean }> | undefined {
    const run = this.run(runId);
    if (!run) return undefined;
    const source = run.same_as ?? run.id;
    const rows = this.db.prepare('SELECT instance, key, ran FROM run_instances WHERE run_id = ?').all(source) as {
      instance: string;
      key: string;
      ran: number;
    }[];
    if (rows.length === 0 && run.status !== 'running' && run.ran + run.cached > 0) return undefined;
    // A repeated run executed nothing itself.
    return new Map(rows.map((r) => [r.instance, { key: parseCacheKey(r.key, 'state.db run_instances'), ran: run.same_as === null && r.ran === 1 }]));
  }

  run(id: number): RunRow | undefined {
    return this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
  }

  /** Runs left 'running' by an orchestrator that is gone (killed): mark them, and their attempts, as killed. */
  reapDeadRuns(): void {
    const host = hostname();
    const rows = this.db.prepare(`SELECT id, pid FROM runs WHERE status = 'running' AND host = ?`).all(host) as { id: number; pid: number }[];
    for (const r of rows) {
      if (r.pid === process.pid || pidAlive(r.pid)) continue;
      this.db.transaction(() => {
        this.db.prepare(`UPDATE runs SET status = 'killed' WHERE id = ?`).run(r.id);
        const killed: AttemptFailure = { kind: 'orchestrator-killed' };
        this.db
          .prepare(`UPDATE attempts SET status = 'killed', error = ?, failure = ? WHERE run_id = ? AND status = 'running'`)
          .run(describeFailure(killed), JSON.stringify(killed), r.id);
      })();
    }
  }

  runs(limit: number): RunRow[] {
    return this.db.prepare('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit) as RunRow[];
  }

  attemptsOfRun(runId: number): AttemptRow[] {
    return this.db.prepare('SELECT * FROM attempts WHERE run_id = ? ORDER BY id').all(runId) as AttemptRow[];
  }

  /** The latest attempt of an instance id, or of any instance of a stage name. */
  lastAttempt(name: string): AttemptRow | undefined {
    return (this.db.prepare('SELECT * FROM attempts WHERE instance = ? ORDER BY id DESC LIMIT 1').get(name) ??
      this.db.prepare('SELECT * FROM attempts WHERE stage = ? ORDER BY id DESC LIMIT 1').get(name)) as AttemptRow | undefined;
  }

  // --- fingerprints and entries ------------------------------------------
  lastFingerprints(): Map<string, LastFingerprintRow> {
    const rows = this.db.prepare('SELECT * FROM last_fingerprint').all() as (LastFingerprintRow & { key: string })[];
    return new Map(rows.map((r) => [r.instance, { ...r, key: parseCacheKey(r.key, 'state.db last_fingerprint') }]));
  }

  recordFingerprint(row: LastFingerprintRow): void {
    this.stmt('INSERT OR REPLACE INTO last_fingerprint (instance, stage, key, fingerprint, run_id) VALUES (?, ?, ?, ?, ?)').run(
      row.instance,
      row.stage,
      row.key,
      row.fingerprint,
      row.run_id,
    );
  }

  entries(): Map<CacheKey, KnownEntry> {
    const rows = this.db.prepare('SELECT key, instance, files, last_run, unsynced_boot FROM entries').all() as {
      key: string;
      instance: string;
      files: string;
      last_run: number;
      unsynced_boot: string | null;
    }[];
    return new Map(
      rows.map((r) => [
        parseCacheKey(r.key, 'state.db entries'),
        { instance: r.instance, files: JSON.parse(r.files) as EntryFile[], lastRun: r.last_run, unsyncedBoot: r.unsynced_boot },
      ]),
    );
  }

  /** `unsyncedBoot`: the boot this is recorded in, until the store's file system is synced (./durability.ts); null when known synced. */
  recordEntry(key: CacheKey, instance: string, files: EntryFile[], runId: number, unsyncedBoot: string | null): void {
    this.stmt('INSERT OR REPLACE INTO entries (key, instance, files, last_run, unsynced_boot) VALUES (?, ?, ?, ?, ?)').run(
      key,
      instance,
      JSON.stringify(files),
      runId,
      unsyncedBoot,
    );
  }

  /** Entries recorded in `boot` and not yet known synced. */
  unsyncedEntries(boot: string): CacheKey[] {
    return (this.stmt('SELECT key FROM entries WHERE unsynced_boot = ?').pluck().all(boot) as string[]).map((k) => parseCacheKey(k, 'state.db entries'));
  }

  /** These entries are on disk now: their stat signatures stand for their content after a crash too. */
  markSynced(keys: CacheKey[]): void {
    if (keys.length === 0) return;
    this.db.prepare('UPDATE entries SET unsynced_boot = NULL WHERE key IN (SELECT value FROM json_each(?))').run(JSON.stringify(keys));
  }

  forgetEntry(key: CacheKey): void {
    this.stmt('DELETE FROM entries WHERE key = ?').run(key);
  }

  /** Mark entries as used by a run, in one statement (a no-op run of 10,000 instances must stay cheap). */
  touchEntries(keys: CacheKey[], runId: number): void {
    if (keys.length === 0) return;
    this.db.prepare('UPDATE entries SET last_run = ? WHERE key IN (SELECT value FROM json_each(?))').run(runId, JSON.stringify(keys));
  }

  /** Drop stat-cache rows of files that no longer exist (gc): the cache is read whole at start. */
  pruneStatCache(exists: (path: string) => boolean): number {
    const paths = this.db.prepare('SELECT path FROM stat_cache').pluck().all() as string[];
    const gone = paths.filter((p) => !exists(p));
    const del = this.db.prepare('DELETE FROM stat_cache WHERE path = ?');
    this.db.transaction(() => {
      for (const p of gone) del.run(p);
    })();
    return gone.length;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
