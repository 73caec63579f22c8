// The local executor: each job is a process group of its own (detached), so a
// cancel reaches the worker and everything it started, and a Ctrl-C in the
// terminal reaches only the orchestrator, which decides what to do. Output
// goes straight to the log file (no copy through this process); events come
// back on file descriptor 3 as JSON lines.
//
// Jobs that may share a process (JobRequest.pooled) go to a pool of
// long-lived workers (`smke worker --serve`) instead: each is still a detached
// process group of its own, takes one job at a time over its stdin, and is
// replaced when it exits, crashes or is cancelled. Starting Node and loading
// the registry is most of a trivial stage's cost; the pool pays it once per
// worker.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { WorkerEvent } from '../events.js';
import { stageEnv } from '../secrets.js';
import type { Executor, JobExit, JobHandle, JobRequest } from './executor.js';

interface LocalHandle extends JobHandle {
  pid: number;
  done: Promise<JobExit>;
  /** Set for a job run by a pooled worker. */
  worker?: PoolWorker;
}

interface PoolJob {
  handle: LocalHandle;
  onEvent: (e: WorkerEvent) => void;
  finish: (exit: JobExit) => void;
}

interface PoolWorker {
  proc: ChildProcess;
  pid: number;
  /** Workers are only reused for jobs with the same cwd and environment. */
  key: string;
  current?: PoolJob;
  /** Never given another job (it said it retires, was cancelled, or exited). */
  retired: boolean;
  /** Given a job at some point: until then it holds nothing (no lock, no output) and may simply be killed. */
  used: boolean;
}

/** Workers are only reused for jobs with the same cwd and environment. */
const poolKey = (cwd: string, env: Record<string, string>): string => JSON.stringify([cwd, env]);

/** Signal a job's whole process group (each job, and each pooled worker, leads its own). */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  // A worker that could not be started has no pid (-1 here): -(-1) would be init.
  if (!(pid > 0)) return;
  try {
    process.kill(-pid, signal);
  } catch {
    /* group already gone */
  }
}

/** How `proc` ended; `error` when it could not be started at all. */
function exitOf(proc: ChildProcess): Promise<JobExit & { error?: string }> {
  return new Promise((res) => {
    proc.once('error', (err) => res({ exitCode: null, signal: null, error: err.message }));
    proc.once('exit', (code, signal) => res({ exitCode: code, signal }));
  });
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  private seq = 0;

  private readonly idle: PoolWorker[] = [];
  private readonly workers = new Set<PoolWorker>();

  async submit(job: JobRequest, onEvent: (e: WorkerEvent) => void): Promise<JobHandle> {
    // A pooled worker makes the log's directory itself, when it finds it missing (one system call per job, not three).
    if (job.pooled) return this.submitPooled(job, onEvent);
    mkdirSync(dirname(job.logPath), { recursive: true });
    const log = openSync(job.logPath, 'a', 0o600);
    let proc: ChildProcess;
    try {
      // node:child_process, not execa: execa takes ~100 ms to load, paid by every run that runs anything.
      proc = spawn(job.command[0]!, job.command.slice(1), {
        cwd: job.cwd,
        env: { ...stageEnv(process.env, job.passEnv), ...job.env, SMKE_EVENTS_FD: '3' },
        // A detached group outlives us by design: a killed orchestrator's finished work is still published.
        detached: true,
        stdio: ['ignore', log, log, 'pipe'],
      });
    } finally {
      // The child has its own copy of the descriptor once spawned.
      closeSync(log);
    }
    const exited = exitOf(proc);
    const pid = proc.pid;
    if (pid === undefined) {
      const r = await exited;
      throw new Error(`could not start the worker: ${r.error ?? 'unknown error'}`);
    }
    const events = proc.stdio[3] as Readable;
    const lines = createInterface({ input: events, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (!line) return;
      try {
        onEvent(JSON.parse(line) as WorkerEvent);
      } catch {
        // A torn line from a killed worker: ignore it; its exit status decides.
      }
    });
    const linesClosed = new Promise<void>((res) => lines.once('close', () => res()));
    const done = exited.then(async (exit) => {
      await linesClosed;
      return { exitCode: exit.exitCode, signal: exit.signal };
    });
    return { id: `local-${++this.seq}-${pid}`, pid, done } as LocalHandle;
  }

  private submitPooled(job: JobRequest, onEvent: (e: WorkerEvent) => void): LocalHandle {
    const key = poolKey(job.cwd, job.env);
    const i = this.idle.findIndex((x) => !x.retired && x.key === key);
    const w = i >= 0 ? this.idle.splice(i, 1)[0]! : this.startWorker(job, key, join(dirname(job.logPath), 'workers.log'));
    let finish!: (exit: JobExit) => void;
    const done = new Promise<JobExit>((res) => {
      finish = res;
    });
    const handle: LocalHandle = { id: `local-${++this.seq}-${w.pid}`, pid: w.pid, done, worker: w };
    w.current = { handle, onEvent, finish };
    w.used = true;
    w.proc.stdin!.write(`${JSON.stringify(job.pooled)}\n`);
    return handle;
  }

  /**
   * Start a pooled worker for jobs with this cwd and environment before the
   * first such job is submitted, so that its start (Node, then the modules a
   * job needs: ~0.2 s) overlaps with the orchestrator's own. It waits idle.
   * Its own output (normally none: each job's goes to the job's log) goes to
   * `workerLog`.
   */
  prestart(o: { cwd: string; env: Record<string, string>; workerLog: string }): void {
    const key = poolKey(o.cwd, o.env);
    if ([...this.workers].some((w) => w.key === key && !w.retired)) return;
    this.idle.push(this.startWorker(o, key, o.workerLog));
  }

  private startWorker(job: Pick<JobRequest, 'cwd' | 'env'>, key: string, workerLog: string): PoolWorker {
    // The worker's own stdout/stderr (each job's output goes to its log through the job).
    mkdirSync(dirname(workerLog), { recursive: true });
    const log = openSync(workerLog, 'a', 0o600);
    let proc: ChildProcess;
    try {
      proc = spawn(process.execPath, [fileURLToPath(new URL('../../../bin/smke.js', import.meta.url)), 'worker', '--serve'], {
        cwd: job.cwd,
        // The allow-list only: pooled jobs are those given nothing more from smke's environment (../attempt.ts runsPooled).
        env: { ...stageEnv(process.env, []), ...job.env, SMKE_EVENTS_FD: '3' },
        detached: true,
        stdio: ['pipe', log, log, 'pipe'],
      });
    } finally {
      closeSync(log);
    }
    const w: PoolWorker = { proc, pid: proc.pid ?? -1, key, retired: false, used: false };
    this.workers.add(w);
    // A worker that died leaves its stdin broken: the exit handler reports the job.
    proc.stdin!.on('error', () => {
      w.retired = true;
    });
    const lines = createInterface({ input: proc.stdio[3] as Readable, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (!line) return;
      let e: WorkerEvent | { type: 'done'; code: number; last?: boolean };
      try {
        e = JSON.parse(line) as typeof e;
      } catch {
        return; // a torn line from a killed worker: its exit decides
      }
      const cur = w.current;
      if (!cur) return;
      if (e.type !== 'done') return cur.onEvent(e);
      w.current = undefined;
      if (e.last) w.retired = true;
      if (!w.retired) this.idle.push(w);
      cur.finish({ exitCode: e.code, signal: null });
    });
    const linesClosed = new Promise<void>((res) => lines.once('close', () => res()));
    const exited = exitOf(proc);
    void exited.then(async (exit) => {
      await linesClosed;
      w.retired = true;
      this.workers.delete(w);
      const cur = w.current;
      w.current = undefined;
      // Died with a job in hand (crash, OOM kill, cancel): the job ends with the process.
      cur?.finish(exit);
    });
    return w;
  }

  /**
   * Let workers exit (they finish the job in hand first). One never given a
   * job (prestarted, then not needed) is killed: it may still be starting,
   * and this process would wait for it.
   */
  close(): void {
    for (const w of this.workers) {
      w.retired = true;
      if (w.used) w.proc.stdin!.end();
      else killGroup(w.pid, 'SIGKILL');
    }
    this.idle.length = 0;
  }

  wait(handle: JobHandle): Promise<JobExit> {
    return (handle as LocalHandle).done;
  }

  async cancel(handle: JobHandle, graceMs = 5000): Promise<void> {
    const h = handle as LocalHandle;
    if (h.worker) {
      // The worker may have moved on to another job: only its own job is cancelled.
      if (h.worker.current?.handle !== h) return;
      h.worker.retired = true;
    }
    killGroup(h.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(h.pid, 'SIGKILL'), graceMs);
    void h.done.finally(() => clearTimeout(timer));
  }
}
