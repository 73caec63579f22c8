// The Slurm executor: each job is a batch job running the same worker as the
// local executor (`smke worker <job.json>`), on a file system the orchestrator
// shares with the compute nodes.
//
// How the end of a job is known, most exact first:
//  1. the sentinel file the job wrapper writes atomically (tmp + mv) with the
//     worker's exit code (143 when Slurm or scancel sent SIGTERM);
//  2. one batched `squeue -h -t all -j id1,id2,...` per round for every job in
//     flight, with backoff from pollMinMs to pollMaxMs — never a call per job;
//  3. the jobcomp file for a job squeue has forgotten (MinJobAge).
// A job that ends in TIMEOUT, NODE_FAIL, CANCELLED (not by us), PREEMPTED,
// OUT_OF_MEMORY... is a failed attempt with Slurm's state as the reason, so
// the scheduler's `retries` apply to it like to any failure.
//
// Events: the worker appends JSON lines to the job's events file (it has no
// pipe to us); the poller tails it on every tick. The worker's `final` event is
// held back until Slurm's view is known, so a worker that reports "cancelled"
// because Slurm killed it at its time limit becomes a failure that says TIMEOUT.
//
// Re-attach: every submission is recorded in the `slurm_jobs` table of the
// project's state DB (.smke/state.db) with the instance key. An orchestrator
// that was killed and restarted asks for the same key again; if a recorded job
// is still pending (or running without having taken the instance lock yet) it
// is adopted instead of submitted: the job's copy of the job file is replaced
// by the new one (new lock token, events and log paths), so the worker that
// eventually starts serves the new orchestrator. Jobs already running hold the
// instance lock themselves, and the orchestrator waits on that lock and reuses
// the published entry; jobs that finished meanwhile published theirs.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type Database from 'better-sqlite3';
import type { WorkerEvent } from '../events.js';
import { waitUnlessAborted } from '../wait.js';
import { stageEnv } from '../secrets.js';
import { loadSlurmConfig, slurmTime, type SlurmConfig } from './slurm-config.js';
import type { Executor, JobExit, JobHandle, JobRequest } from './executor.js';

/** Slurm states after which a job never runs again. */
export const TERMINAL = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'NODE_FAIL',
  'PREEMPTED',
  'OUT_OF_MEMORY',
  'BOOT_FAIL',
  'DEADLINE',
  'SPECIAL_EXIT',
  'REVOKED',
]);

export interface SlurmCalls {
  sbatch: number;
  squeue: number;
  scancel: number;
}

interface Tracked {
  id: string;
  key: string;
  sentinel: string;
  eventsPath: string;
  offset: number;
  partial: string;
  onEvent: (e: WorkerEvent) => void;
  final?: WorkerEvent & { type: 'final' };
  cancelled: boolean;
  /** Sentinel said 143 and we did not cancel: wait for Slurm's state to tell why. */
  needState: boolean;
  code?: number;
  missing: number;
  done: Promise<JobExit>;
  resolve: (e: JobExit) => void;
}

interface JobRow {
  job_id: string;
  key: string;
  instance: string;
  job_file: string;
  sentinel: string;
  events_path: string;
  log_path: string;
}

const run = (cmd: string, args: string[], timeoutMs = 30_000, env?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((res) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      res({ code, stdout: String(stdout), stderr: String(stderr || (err && !stderr ? err.message : '')) });
    });
  });

const jobName = (instance: string): string => `smke-${instance.replace(/[^A-Za-z0-9._,=[\]-]+/g, '_')}`;

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The batch script: run the worker, record its exit code atomically; SIGTERM (scancel, time limit) records 143.
 * The trap reads `$!`, which bash sets as the worker is forked: a variable assigned on the next line would
 * still be empty for a SIGTERM that lands between the two, and the worker would then run on, unsignalled,
 * until Slurm's SIGKILL (KillWait, 30 s by default).
 */
export function wrapperScript(command: string[], env: Record<string, string>, sentinel: string, gpus = 0): string {
  const exports =
    Object.entries(env)
      .filter(([k]) => k !== 'CUDA_VISIBLE_DEVICES' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      .map(([k, v]) => `export ${k}=${sh(v)}\n`)
      .join('') +
    // As locally: a stage that asked for no GPU sees none (not the submitting shell's).
    (gpus === 0 ? 'export CUDA_VISIBLE_DEVICES=\n' : '');
  return `#!/bin/bash
# smke job wrapper (src/runtime/executors/slurm.ts). GPUs: Slurm sets CUDA_VISIBLE_DEVICES.
S=${sh(sentinel)}
record() { printf '%s\\n' "$1" >"$S.tmp.$$" && mv -f "$S.tmp.$$" "$S"; }
unset SMKE_EVENTS_FD
${exports}trap 'trap "" TERM; p=$!; [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; [ -n "$p" ] && wait "$p"; record 143; exit 143' TERM
${command.map(sh).join(' ')} &
wait "$!"
code=$?
record "$code"
exit "$code"
`;
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  /** Controller calls made by this executor (the benchmark reads them). */
  readonly calls: SlurmCalls = { sbatch: 0, squeue: 0, scancel: 0 };
  private readonly tracked = new Map<string, Tracked>();
  private config: SlurmConfig | undefined;
  private db: Database.Database | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private interval = 0;
  private nextQuery = 0;
  private cancelQueue: string[] = [];
  private cancelTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: { projectDir?: string; config?: SlurmConfig } = {}) {
    this.config = opts.config;
  }

  private cfg(projectDir: string): SlurmConfig {
    return (this.config ??= loadSlurmConfig(projectDir));
  }

  private note(cmd: string, n: number): void {
    this.calls[cmd as keyof SlurmCalls]++;
    const f = process.env.SMKE_SLURM_CALLS_LOG;
    if (f) {
      try {
        appendFileSync(f, `${Date.now()} ${cmd} ${n}\n`);
      } catch {
        /* benchmark aid only */
      }
    }
  }

  private openDb(projectDir: string): Database.Database | undefined {
    if (this.db) return this.db;
    try {
      const dir = join(projectDir, '.smke');
      mkdirSync(dir, { recursive: true });
      // Loaded on the first Slurm job: a local run never opens a second connection.
      const Ctor = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      const db = new Ctor(join(dir, 'state.db'));
      db.pragma('busy_timeout = 10000');
      db.exec(`CREATE TABLE IF NOT EXISTS slurm_jobs (
        job_id TEXT PRIMARY KEY, key TEXT NOT NULL, instance TEXT NOT NULL, attempt INTEGER,
        job_file TEXT NOT NULL, sentinel TEXT NOT NULL, events_path TEXT NOT NULL, log_path TEXT NOT NULL,
        submitted_at REAL NOT NULL, ended_at REAL, state TEXT)`);
      db.exec('CREATE INDEX IF NOT EXISTS slurm_jobs_key ON slurm_jobs(key) WHERE ended_at IS NULL');
      this.db = db;
    } catch {
      this.db = undefined;
    }
    return this.db;
  }

  async submit(job: JobRequest, onEvent: (e: WorkerEvent) => void): Promise<JobHandle> {
    const jobFile = job.command.find((a) => a.endsWith('.job.json'));
    let spec: { key?: string; projectDir?: string; attempt?: number; instance?: string; eventsPath?: string } = {};
    if (jobFile) {
      try {
        spec = JSON.parse(readFileSync(jobFile, 'utf8')) as typeof spec;
      } catch {
        /* submit without re-attach */
      }
    }
    const projectDir = resolve(this.opts.projectDir ?? spec.projectDir ?? job.cwd);
    const cfg = this.cfg(projectDir);
    const dir = join(projectDir, '.smke', 'slurm');
    mkdirSync(dir, { recursive: true });
    mkdirSync(dirname(job.logPath), { recursive: true });
    const key = spec.key ?? job.name;
    const db = this.openDb(projectDir);

    const adopted = db && jobFile ? await this.reattach(db, key, jobFile, job, onEvent) : undefined;
    if (adopted) return adopted;

    const base = `${key.slice(0, 16)}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    const sentinel = join(dir, `${base}.exit`);
    const copy = join(dir, `${base}.job.json`);
    const script = join(dir, `${base}.sh`);
    const command = jobFile ? job.command.map((a) => (a === jobFile ? copy : a)) : job.command;
    if (jobFile) writeFileSync(copy, readFileSync(jobFile), { mode: 0o600 });
    writeFileSync(script, wrapperScript(command, job.env, sentinel, job.resources.gpus), { mode: 0o700 });

    const r = job.resources;
    const args = [
      '--parsable',
      `--job-name=${jobName(job.name)}`,
      `--output=${job.logPath}`,
      '--open-mode=append',
      `--chdir=${job.cwd}`,
      `--cpus-per-task=${Math.max(1, Math.ceil(r.cpus || 1))}`,
      '--kill-on-invalid-dep=yes',
    ];
    if (r.memBytes > 0) args.push(`--mem=${Math.ceil(r.memBytes / (1 << 20))}M`);
    if (r.gpus > 0) args.push(`--gres=gpu:${r.gpus}`);
    if (r.timeSeconds > 0) args.push(`--time=${slurmTime(r.timeSeconds)}`);
    else if (cfg.time) args.push(`--time=${cfg.time}`);
    if (cfg.partition) args.push(`--partition=${cfg.partition}`);
    if (cfg.account) args.push(`--account=${cfg.account}`);
    if (cfg.qos) args.push(`--qos=${cfg.qos}`);
    args.push(...(cfg.extraArgs ?? []), script);
    // Recorded before sbatch under a provisional id: an orchestrator killed between sbatch and the
    // record still leaves a row, which a restart resolves by the job's script path (squeue %o).
    const provisional = `pending:${base}`;
    db?.prepare(
      `INSERT OR REPLACE INTO slurm_jobs (job_id, key, instance, attempt, job_file, sentinel, events_path, log_path, submitted_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(provisional, key, job.name, spec.attempt ?? null, copy, sentinel, job.eventsPath, job.logPath, Date.now() / 1000);
    this.note('sbatch', 1);
    // sbatch exports its own environment to the job (--export=ALL): give it
    // only what the stage may see, so the batch script never holds a secret.
    const out = await run('sbatch', args, undefined, stageEnv(process.env, job.passEnv));
    const id = out.stdout.trim().split(';')[0] ?? '';
    if (out.code !== 0 || !/^\d+$/.test(id)) {
      db?.prepare('DELETE FROM slurm_jobs WHERE job_id = ?').run(provisional);
      rmSync(script, { force: true });
      rmSync(copy, { force: true });
      throw new Error(`sbatch failed (exit ${out.code}): ${(out.stderr || out.stdout).trim()}`);
    }
    db?.prepare('UPDATE slurm_jobs SET job_id = ? WHERE job_id = ?').run(id, provisional);
    return this.track(id, key, sentinel, job.eventsPath, onEvent);
  }

  /** A job recorded for this key that Slurm still holds pending (or running): adopt it. */
  private async reattach(
    db: Database.Database,
    key: string,
    jobFile: string,
    job: JobRequest,
    onEvent: (e: WorkerEvent) => void,
  ): Promise<JobHandle | undefined> {
    let rows = db.prepare('SELECT * FROM slurm_jobs WHERE key = ? AND ended_at IS NULL ORDER BY submitted_at DESC').all(key) as JobRow[];
    if (!rows.length) return undefined;
    for (const row of rows.filter((r) => r.job_id.startsWith('pending:'))) {
      // Killed between sbatch and the record: find the job by its name and script, if sbatch got that far.
      this.note('squeue', 1);
      const script = row.sentinel.replace(/\.exit$/, '.sh');
      const r = await run('squeue', ['-h', '-t', 'all', '-n', jobName(row.instance), '-o', '%i|%o']);
      const found = r.stdout
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('|')), l.slice(l.indexOf('|') + 1).trim()])
        .find(([, cmd]) => cmd === script)?.[0];
      if (found) db.prepare('UPDATE slurm_jobs SET job_id = ? WHERE job_id = ?').run(found, row.job_id);
      else if (r.code === 0) db.prepare("UPDATE slurm_jobs SET ended_at = ?, state = 'NOT SUBMITTED' WHERE job_id = ?").run(Date.now() / 1000, row.job_id);
      else throw new Error(`cannot ask Slurm whether a job of this stage was submitted (squeue fails): not submitting a second one`);
    }
    rows = db.prepare('SELECT * FROM slurm_jobs WHERE key = ? AND ended_at IS NULL ORDER BY submitted_at DESC').all(key) as JobRow[];
    if (!rows.length) return undefined;
    // Without an answer from the controller we cannot know whether they still run: ask again, a few times.
    let states = await this.query(rows.map((r) => r.job_id));
    for (let i = 0; !states && i < 5; i++) {
      await waitUnlessAborted(1000);
      states = await this.query(rows.map((r) => r.job_id));
    }
    if (!states)
      throw new Error(
        `cannot ask Slurm whether job(s) ${rows.map((r) => r.job_id).join(',')} of this stage still run (squeue fails): not submitting a second one`,
      );
    let chosen: { row: JobRow; state: string } | undefined;
    for (const row of rows) {
      const st = states?.get(row.job_id)?.state;
      const alive = st !== undefined && !TERMINAL.has(st) && !existsSync(row.sentinel) && !this.tracked.has(row.job_id);
      if (alive && !chosen) chosen = { row, state: st };
      else if (states && (st === undefined || TERMINAL.has(st))) {
        db.prepare('UPDATE slurm_jobs SET ended_at = ?, state = ? WHERE job_id = ?').run(Date.now() / 1000, st ?? 'GONE', row.job_id);
      }
    }
    if (!chosen) return undefined;
    const { row, state } = chosen;
    // The job reads its job file when it starts: give it ours (our lock token, events and log paths).
    const tmp = `${row.job_file}.${process.pid}.tmp`;
    writeFileSync(tmp, readFileSync(jobFile));
    renameSync(tmp, row.job_file);
    if (row.log_path !== job.logPath && !existsSync(job.logPath)) {
      try {
        symlinkSync(row.log_path, job.logPath);
      } catch {
        /* the log stays where Slurm writes it */
      }
    }
    db.prepare('UPDATE slurm_jobs SET events_path = ?, log_path = ? WHERE job_id = ?').run(job.eventsPath, job.logPath, row.job_id);
    onEvent({ type: 'log', level: 'info', message: `re-attached to Slurm job ${row.job_id} (${state}) instead of submitting again` });
    // A job already running read the old job file: its events go to the old path.
    const events = state === 'PENDING' ? job.eventsPath : row.events_path;
    return this.track(row.job_id, key, row.sentinel, events, onEvent);
  }

  private track(id: string, key: string, sentinel: string, eventsPath: string, onEvent: (e: WorkerEvent) => void): JobHandle {
    let resolveFn!: (e: JobExit) => void;
    const done = new Promise<JobExit>((res) => (resolveFn = res));
    const t: Tracked = {
      id,
      key,
      sentinel,
      eventsPath,
      offset: 0,
      partial: '',
      onEvent,
      cancelled: false,
      needState: false,
      missing: 0,
      done,
      resolve: resolveFn,
    };
    this.tracked.set(id, t);
    // A new job does not bring the next squeue forward: its sentinel tells when it ends; squeue only
    // catches jobs that end without one, and a busy pipeline must not poll once per submission.
    if (this.tracked.size === 1) {
      this.interval = this.config?.pollMinMs ?? 200;
      this.nextQuery = Date.now() + this.interval;
    }
    this.schedule();
    return { id };
  }

  wait(handle: JobHandle): Promise<JobExit> {
    const t = this.tracked.get(handle.id);
    return t ? t.done : Promise.resolve({ exitCode: null, signal: null });
  }

  /** scancel; requests made within a few milliseconds of each other (Ctrl-C) go out as one call. */
  async cancel(handle: JobHandle): Promise<void> {
    const t = this.tracked.get(handle.id);
    if (t) t.cancelled = true;
    this.cancelQueue.push(handle.id);
    if (this.cancelTimer) return;
    await new Promise<void>((res) => {
      this.cancelTimer = setTimeout(() => {
        const ids = this.cancelQueue;
        this.cancelQueue = [];
        this.cancelTimer = undefined;
        this.note('scancel', ids.length);
        void run('scancel', ids).then(() => {
          this.interval = this.config?.pollMinMs ?? 200;
          this.nextQuery = Date.now();
          res();
        });
      }, 20);
    });
  }

  /** Drop the DB connection (the orchestrator calls this at the end of a run). */
  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  private schedule(): void {
    if (this.timer || this.tracked.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick().finally(() => this.schedule());
    }, this.config?.tickMs ?? 200);
  }

  private drain(t: Tracked): void {
    let fd: number;
    try {
      fd = openSync(t.eventsPath, 'r');
    } catch {
      return;
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= t.offset) return;
      const buf = Buffer.alloc(size - t.offset);
      const n = readSync(fd, buf, 0, buf.length, t.offset);
      t.offset += n;
      const text = t.partial + buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      t.partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        let e: WorkerEvent;
        try {
          e = JSON.parse(line) as WorkerEvent;
        } catch {
          continue;
        }
        if (e.type === 'final') t.final = e;
        else t.onEvent(e);
      }
    } finally {
      closeSync(fd);
    }
  }

  private readSentinel(t: Tracked): number | undefined {
    try {
      const n = Number(readFileSync(t.sentinel, 'utf8').trim());
      return Number.isInteger(n) ? n : undefined;
    } catch {
      return undefined;
    }
  }

  private finish(t: Tracked, slurmState: string | undefined, reason?: string): void {
    this.drain(t);
    this.tracked.delete(t.id);
    const code = t.code ?? this.readSentinel(t);
    const failedBySlurm = slurmState !== undefined && slurmState !== 'COMPLETED' && slurmState !== 'FAILED' && !t.cancelled;
    if (failedBySlurm && t.final?.status !== 'succeeded') {
      const why = reason && reason !== 'None' ? ` (${reason})` : '';
      t.onEvent({ type: 'final', status: 'failed', error: `Slurm job ${t.id} ended ${slurmState}${why}` });
    } else if (t.final) t.onEvent(t.final);
    else if (slurmState && !t.cancelled && code === undefined) {
      t.onEvent({ type: 'final', status: 'failed', error: `Slurm job ${t.id} ended ${slurmState} without a result (no sentinel; see its log)` });
    }
    try {
      this.db
        ?.prepare('UPDATE slurm_jobs SET ended_at = ?, state = ? WHERE job_id = ?')
        .run(Date.now() / 1000, slurmState ?? (code === 0 ? 'COMPLETED' : `EXIT ${code}`), t.id);
    } catch {
      /* bookkeeping only */
    }
    rmSync(t.sentinel, { force: true });
    rmSync(t.sentinel.replace(/\.exit$/, '.sh'), { force: true });
    rmSync(t.sentinel.replace(/\.exit$/, '.job.json'), { force: true });
    t.resolve(code !== undefined ? { exitCode: code, signal: null } : { exitCode: null, signal: t.cancelled ? 'SIGTERM' : 'SIGKILL' });
  }

  /** One batched squeue for `ids`; undefined when the controller could not be asked. */
  private async query(ids: string[]): Promise<Map<string, { state: string; reason: string }> | undefined> {
    const m = new Map<string, { state: string; reason: string }>();
    if (!ids.length) return m;
    this.note('squeue', ids.length);
    const r = await run('squeue', ['-h', '-t', 'all', '-j', ids.join(','), '-o', '%i %T %r']);
    if (r.code !== 0 && !/Invalid job id/i.test(r.stderr)) return undefined;
    for (const line of r.stdout.split('\n')) {
      const [id, state, ...reason] = line.trim().split(/\s+/);
      if (id && state) m.set(id, { state, reason: reason.join(' ') });
    }
    // squeue has forgotten jobs older than MinJobAge: the jobcomp file remembers how they ended.
    const missing = ids.filter((id) => !m.has(id));
    if (missing.length) for (const [id, st] of this.fromJobcomp(missing)) m.set(id, st);
    return m;
  }

  private fromJobcomp(ids: string[]): Map<string, { state: string; reason: string }> {
    const m = new Map<string, { state: string; reason: string }>();
    let text: string;
    try {
      text = readFileSync(this.config?.jobcomp ?? '/var/lib/smke-slurm/jobcomp.log', 'utf8');
    } catch {
      return m;
    }
    const want = new Set(ids);
    for (const line of text.split('\n')) {
      const id = /^JobId=(\d+)/.exec(line)?.[1];
      if (!id || !want.has(id)) continue;
      const state = /JobState=(\S+)/.exec(line)?.[1];
      if (state) m.set(id, { state, reason: 'from jobcomp' }); // the last line for an id wins
    }
    return m;
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const t of [...this.tracked.values()]) {
        this.drain(t);
        const code = this.readSentinel(t);
        if (code === undefined) continue;
        t.code = code;
        // 0, an ordinary failure, or our own cancel: the sentinel says it all.
        if (code !== 143 || t.cancelled) this.finish(t, undefined);
        else if (!t.needState) {
          // SIGTERM we did not send: a time limit, a preemption, someone's scancel. Ask Slurm now.
          t.needState = true;
          this.nextQuery = 0;
        }
      }
      if (this.tracked.size === 0 || Date.now() < this.nextQuery) return;
      const ids = [...this.tracked.keys()];
      const states = await this.query(ids);
      const maxMs = this.config?.pollMaxMs ?? 5000;
      this.interval = Math.min(maxMs, Math.max(this.interval, 1) * 1.5);
      this.nextQuery = Date.now() + this.interval;
      if (!states) return; // controller unreachable: keep waiting, ask again later
      for (const id of ids) {
        const t = this.tracked.get(id);
        if (!t) continue;
        const st = states.get(id);
        if (!st) {
          // Unknown to squeue and to the jobcomp file: after a few rounds, it is lost.
          if (++t.missing >= 3) this.finish(t, 'LOST', 'Slurm no longer knows the job');
          continue;
        }
        t.missing = 0;
        if (TERMINAL.has(st.state)) {
          if (t.code === undefined) t.code = this.readSentinel(t);
          // The sentinel may have appeared while squeue was asked: then it says it all, as when it is
          // seen first (the same job must not be recorded 'EXIT 1' or 'FAILED' by which came first).
          if (t.code !== undefined && (t.code !== 143 || t.cancelled)) this.finish(t, undefined);
          else this.finish(t, st.state, st.reason);
        } else if (t.needState && st.state !== 'COMPLETING' && st.state !== 'RUNNING') {
          this.finish(t, st.state, st.reason);
        } else if (t.needState) {
          this.nextQuery = Date.now() + 300; // it is ending: look again soon
        }
      }
    } finally {
      this.ticking = false;
    }
  }
}
