// One attempt at one instance, in named phases:
//
//   acquireLock   take the instance's lock, or wait for the run holding it
//   writeJob      the job spec (and its file) the worker reads
//   submitAndWait hand it to an executor, stop it on cancel or past its time limit
//   classify      how it ended, as data: succeeded, lost its lock, cancelled, or failed and why
//   record        the attempt's row in the state database and its events
//
// Each phase takes what it needs and nothing of the run around it, so a test
// drives it alone; `runAttempt` chains the last four for the orchestrator
// (./orchestrate.ts), which owns the lock, the reuse of entries and the
// lost-lock retry.

import { addAbortListener } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Plan, StageInstance } from '../compiler/plan.js';
import { bootId } from './durability.js';
import { registry } from '../stages/registry.js';
import type { Analysed } from './analyse.js';
import type { AttemptFailure } from './attempt-failure.js';
import type { CacheKey } from './cache-key.js';
import type { EventBus, WorkerEvent } from './events.js';
import type { Executor, JobExit, JobHandle, JobRequest } from './executors/executor.js';
import { refKey, seedFromKey, type JobSpec } from './job.js';
import { safeName, type Layout } from './layout.js';
import { breakStale, readLock, release, staleLock, tryAcquire, type LockInfo } from './locks.js';
import { jobEnv, passedEnvNames, runsPooled } from './passenv.js';
import { removeTree } from './readonly.js';
import type { Grant } from './scheduler.js';
import type { EntryFile, StateDb } from './state.js';
import type { EntryCheck } from './store.js';
import { tmpName } from './store.js';
import { smkeVersion } from './version.js';

/** Time as the attempt sees it: tests drive lock polls and time limits by hand instead of sleeping. */
export interface Clock {
  /** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** Calls `fn` after `ms`; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
}

// --- acquire the lock ------------------------------------------------------

export type LockResult = { kind: 'held'; lock: LockInfo } | { kind: 'cancelled' } | { kind: 'published' };

/**
 * Take the lock at `lockPath`. A stale one (its process is gone) is taken
 * over with a warning; a live one is waited for, polling every `pollMs`,
 * until it is released with the entry published by its holder ('published':
 * reuse it) or free to take. Aborting `signal` ends the wait ('cancelled').
 */
export async function acquireLock(o: {
  lockPath: string;
  instance: string;
  bus: EventBus;
  clock: Clock;
  pollMs: number;
  signal: AbortSignal;
  /** Whether the entry is in the store, complete. */
  published: () => boolean;
}): Promise<LockResult> {
  let waitingSaid = false;
  for (;;) {
    if (o.signal.aborted) return { kind: 'cancelled' };
    const r = tryAcquire(o.lockPath);
    if (r.ok) return { kind: 'held', lock: r.info };
    const stale = staleLock(o.lockPath, r.holder);
    if (stale) {
      if (breakStale(o.lockPath, r.holder)) {
        o.bus.emit({ type: 'warning', instance: o.instance, message: `took over the stale lock of ${o.instance} (${stale})` });
      }
      continue;
    }
    if (!waitingSaid) {
      o.bus.emit({ type: 'waiting', instance: o.instance, holder: r.holder ? `pid ${r.holder.pid} on ${r.holder.host}` : 'an unreadable lock file' });
      waitingSaid = true;
    }
    // Aborting ends the wait early; the loop's first line then answers 'cancelled'.
    await o.clock.sleep(o.pollMs, o.signal);
    if (!readLock(o.lockPath) && o.published()) return { kind: 'published' };
  }
}

// --- write the job ---------------------------------------------------------

/** Per process: every attempt's job file, events file and tmp dir get a name no other attempt has (./store.ts tmpName). */
let jobSeq = 0;

export interface PreparedJob {
  job: JobSpec;
  jobFile: string;
  /** Runs in the local executor's worker pool: the job travels over its pipe, no job file is written. */
  pooled: boolean;
  passEnv: string[];
}

/** Absolute paths of the upstream outputs `inst` refers to, by refKey. */
export function upstreamPaths(
  inst: StageInstance,
  storeDir: string,
  instanceOf: (id: string) => StageInstance | undefined,
  keyOf: (id: string) => string,
): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const ref of inst.refs) {
    const up = instanceOf(ref.instance);
    const upKind = up && registry().get(up.kind);
    const spec = up && upKind?.outputs(up.params)[ref.output];
    const upEntry = join(storeDir, keyOf(ref.instance));
    paths[refKey(ref.instance, ref.output)] = spec && spec.path !== '.' ? join(upEntry, spec.path) : upEntry;
  }
  return paths;
}

/** The job of one attempt; its file is written unless the job goes to the worker pool. */
export function writeJob(o: {
  a: Analysed;
  lay: Layout;
  projectDir: string;
  runId: number;
  attempt: number;
  grant: Grant;
  lock: LockInfo;
  onSlurm: boolean;
  refPaths: Record<string, string>;
  backend?: string;
}): PreparedJob {
  const { inst, fp } = o.a;
  const { lay } = o;
  // Not the attempt number: two instances sharing a key (or a lost-lock retry) must never
  // share, and so clean up, each other's job file.
  const base = tmpName(fp.key, ++jobSeq);
  const jobFile = join(lay.tmpDir, `${base}.job.json`);
  const entryDir = join(lay.storeDir, fp.key);
  const job: JobSpec = {
    format: 1,
    key: fp.key,
    instance: inst.id,
    stage: inst.stage,
    kind: inst.kind,
    kindVersion: inst.kindVersion,
    params: inst.params,
    refPaths: o.refPaths,
    symbolic: fp.symbolic,
    fingerprint: fp.parts,
    upstream: fp.upstream,
    projectDir: o.projectDir,
    tmpDir: join(lay.tmpDir, base),
    entryDir,
    scratchDir: join(lay.scratchDir, fp.key),
    logPath: join(lay.logsDir, String(o.runId), `${safeName(inst.id)}.${o.attempt}.log`),
    eventsPath: join(lay.tmpDir, `${base}.events.jsonl`),
    lock: { path: join(lay.locksDir, fp.key), token: o.lock.token },
    attempt: o.attempt,
    seed: seedFromKey(fp.key),
    // On Slurm the job asks for the stage's own resources and Slurm picks the GPUs.
    resources: o.onSlurm ? { ...inst.resources, gpuIds: [] } : { ...inst.resources, cpus: o.grant.cpus, gpuIds: o.grant.gpuIds },
    backend: o.backend,
    smkeVersion: smkeVersion(),
  };
  // Kinds that may share a process go to the local executor's worker pool
  // (no job file: the job travels over the pool's pipe); GPU jobs, Slurm
  // jobs and stages given variables from smke's environment (a pooled worker
  // has only the allow-list, ./secrets.ts) get a worker process of their own.
  const kind = registry().get(inst.kind);
  const passEnv = passedEnvNames(inst, kind);
  const pooled = runsPooled(inst, o.onSlurm, kind);
  // A pooled stage is small and its worker lives on: its publish leaves the sync to this run's end (./durability.ts).
  if (pooled && bootId() !== undefined) job.deferSync = true;
  if (!pooled) writeFileSync(jobFile, JSON.stringify(job), { mode: 0o600 });
  return { job, jobFile, pooled, passEnv };
}

/** What an executor is asked to run for a prepared job. */
export function jobRequest(p: PreparedJob, inst: StageInstance, grant: Grant, onSlurm: boolean, cwd: string): JobRequest {
  return {
    name: inst.id,
    command: workerCommand(p.jobFile),
    cwd,
    env: jobEnv(grant.gpuIds, inst.resources.gpus, onSlurm),
    passEnv: p.passEnv,
    resources: p.job.resources,
    logPath: p.job.logPath,
    eventsPath: p.job.eventsPath,
    pooled: p.pooled ? p.job : undefined,
  };
}

function workerCommand(jobFile: string): string[] {
  const bin = fileURLToPath(new URL('../../bin/smke.js', import.meta.url));
  return [process.execPath, bin, 'worker', jobFile];
}

/** Remove what the attempt made outside the store, and free the lock (the worker's own removal may not have happened: it may have been killed). */
export function cleanUpJob(p: PreparedJob): void {
  release(p.job.lock.path, p.job.lock.token);
  // A pooled job has neither: it came over the pool's pipe and so do its events.
  if (!p.pooled) {
    rmSync(p.jobFile, { force: true });
    rmSync(p.job.eventsPath, { force: true });
  }
  removeTree(p.job.tmpDir);
}

// --- submit and wait -------------------------------------------------------

export type FinalEvent = Extract<WorkerEvent, { type: 'final' }>;

export type Ended = { started: false; message: string } | { started: true; final?: FinalEvent; exit: JobExit; timedOut: boolean };

/**
 * Run the job to its end. Aborting `signal` cancels it (SIGTERM, then SIGKILL
 * after `graceMs`); so does passing `timeLimitS` (0: no limit), which marks
 * the end as timed out. Worker events other than `final` go to `onEvent`.
 */
export async function submitAndWait(o: {
  executor: Executor;
  request: JobRequest;
  onEvent: (e: Exclude<WorkerEvent, FinalEvent>) => void;
  signal: AbortSignal;
  timeLimitS: number;
  graceMs?: number;
  clock: Clock;
}): Promise<Ended> {
  let final: FinalEvent | undefined;
  let handle: JobHandle;
  try {
    handle = await o.executor.submit(o.request, (e) => {
      if (e.type === 'final') final = e;
      else o.onEvent(e);
    });
  } catch (e) {
    return { started: false, message: e instanceof Error ? e.message : String(e) };
  }
  const onCancel = (): void => void o.executor.cancel(handle, o.graceMs);
  // addAbortListener also fires for an abort that came while the job was being submitted.
  const cancelOnAbort = addAbortListener(o.signal, onCancel);
  let timedOut = false;
  const clearLimit =
    o.timeLimitS > 0
      ? o.clock.after(o.timeLimitS * 1000, () => {
          timedOut = true;
          onCancel();
        })
      : undefined;
  const exit = await o.executor.wait(handle);
  clearLimit?.();
  cancelOnAbort[Symbol.dispose]();
  return { started: true, final, exit, timedOut };
}

// --- classify --------------------------------------------------------------

export type Classified =
  | { status: 'succeeded'; files: EntryFile[] }
  /** Another run took the instance over: wait for it and reuse its result. */
  | { status: 'lost-lock' }
  | { status: 'cancelled' }
  | { status: 'failed'; failure: AttemptFailure };

/**
 * How a started attempt ended. A success counts only when the store entry is
 * there and intact (`entry` checks it; called for a reported success only).
 * Aborting wins over everything but success; a lost lock is 'lost-lock' only
 * while `mayRetryLostLock`, a failure after that.
 */
export function classify(
  ended: Extract<Ended, { started: true }>,
  o: { aborted: boolean; timeLimitS: number; mayRetryLostLock: boolean; entry: (known?: EntryFile[]) => EntryCheck },
): Classified {
  const { exit, final } = ended;
  if (!ended.timedOut && final?.status === 'succeeded') {
    const check = o.entry(final.files);
    if (check.state === 'ok') return { status: 'succeeded', files: check.files };
    if (o.aborted) return { status: 'cancelled' };
    return { status: 'failed', failure: { kind: 'bad-entry', state: check.state } };
  }
  if (final?.status === 'lost-lock' && !ended.timedOut && !o.aborted && o.mayRetryLostLock) return { status: 'lost-lock' };
  if (o.aborted || (final?.status === 'cancelled' && !ended.timedOut)) return { status: 'cancelled' };
  if (ended.timedOut) return { status: 'failed', failure: { kind: 'timeout', limitS: o.timeLimitS } };
  if (final?.status === 'lost-lock') return { status: 'failed', failure: { kind: 'lost-lock' } };
  if (final?.reason) return { status: 'failed', failure: final.reason };
  if (final?.error !== undefined) return { status: 'failed', failure: { kind: 'error', message: final.error } };
  return { status: 'failed', failure: exit.signal ? { kind: 'signal', signal: exit.signal } : { kind: 'exit', code: exit.exitCode } };
}

// --- record ----------------------------------------------------------------

/** Records a success's entry and calls `closeRow`, in one state transaction (see `record`). */
export type RecordSuccess = (files: EntryFile[], closeRow: () => void) => void;

type RowDetail = Parameters<StateDb['finishAttempt']>[2];

/**
 * An attempt's row in the state database, written as deferred writes (AttemptScope.defer): the insert
 * when the attempt starts, the close when it ends, in that order, neither on the path from one stage
 * to the next.
 */
class AttemptRow {
  private id: number | undefined;

  constructor(
    private readonly state: StateDb,
    defer: (write: () => void) => void,
    a: Parameters<StateDb['startAttempt']>[0],
  ) {
    // The start time now, not when the deferred insert runs.
    const row = { ...a, startedMs: Date.now() };
    defer(() => {
      this.id = state.startAttempt(row);
    });
  }

  /** Close the row; call from a deferred write (which runs after the insert). */
  close(status: string, detail: RowDetail): void {
    if (this.id === undefined) throw new Error('its attempt row was never written');
    this.state.finishAttempt(this.id, status, detail);
  }
}

/** What the attempt came to, for the scheduler (through ./orchestrate.ts) and the lost-lock retry. */
export type AttemptOutcome = { status: 'succeeded' } | { status: 'cancelled' } | { status: 'failed'; failure: AttemptFailure } | { status: 'lost-lock' };

/**
 * Close the attempt's row and say what happened. A success is handed to
 * `recordSuccess` with the closing of its row: the caller records the entry
 * the run now uses and closes the row in one transaction (once the stages
 * the success unblocked have started), so the database never has one without
 * the other. Other ends close the row as a deferred write.
 */
export function record(
  c: Classified | { status: 'not-started'; message: string },
  o: {
    bus: EventBus;
    row: AttemptRow;
    defer: (write: () => void) => void;
    instance: string;
    key: CacheKey;
    exit?: JobExit;
    seconds: number;
    recordSuccess: RecordSuccess;
  },
): AttemptOutcome {
  const { bus, row } = o;
  const exit = { exitCode: o.exit?.exitCode, signal: o.exit?.signal };
  const close = (status: string, detail: RowDetail): void => o.defer(() => row.close(status, detail));
  switch (c.status) {
    case 'succeeded':
      o.recordSuccess(c.files, () => row.close('succeeded', exit));
      bus.emit({ type: 'succeeded', instance: o.instance, key: o.key, seconds: o.seconds });
      return { status: 'succeeded' };
    case 'lost-lock':
      close('cancelled', { failure: { kind: 'lost-lock' } });
      return { status: 'lost-lock' };
    case 'cancelled':
      close('cancelled', exit);
      bus.emit({ type: 'cancelled', instance: o.instance });
      return { status: 'cancelled' };
    case 'not-started':
      return fail({ kind: 'not-started', message: c.message }, {});
    case 'failed':
      return fail(c.failure, exit);
  }
  function fail(failure: AttemptFailure, detail: { exitCode?: number | null; signal?: string | null }): AttemptOutcome {
    close('failed', { failure, ...detail });
    return { status: 'failed', failure };
  }
}

// --- the phases chained ----------------------------------------------------

/** What every attempt of one run shares. */
export interface AttemptScope {
  plan: Plan;
  lay: Layout;
  state: StateDb;
  bus: EventBus;
  runId: number;
  clock: Clock;
  backend?: string;
  cancelGraceMs?: number;
  executorFor(inst: StageInstance): Executor;
  onSlurm(inst: StageInstance): boolean;
  refPaths(inst: StageInstance): Record<string, string>;
  /** With `known` (the files the worker reports it published), a check that finds them unchanged is one stat each. */
  checkEntry(key: CacheKey, known?: EntryFile[]): EntryCheck;
  /** The attempt's log, for the `failed` event the scheduler asks for later. */
  started(instance: string, logPath: string, attempt: number): void;
  /**
   * A write to the state database (or to results/), run on the event loop's next turn in one
   * transaction with the others due then, in the order they were deferred; one that fails fails
   * `instance` (./orchestrate.ts, Later).
   */
  defer(instance: string, write: () => void): void;
}

/**
 * Write the job, run it, classify and record its end, holding `lock` (which
 * this releases). 'lost-lock' asks the caller to wait for the run that took
 * the instance over. A success goes to `recordSuccess` with the closing of
 * the attempt's row (see `record`).
 */
export async function runAttempt(
  s: AttemptScope,
  a: Analysed,
  at: { attempt: number; grant: Grant; signal: AbortSignal; lock: LockInfo; mayRetryLostLock: boolean; recordSuccess: RecordSuccess },
): Promise<AttemptOutcome> {
  const { inst, fp } = a;
  const onSlurm = s.onSlurm(inst);
  const prepared = writeJob({
    a,
    lay: s.lay,
    projectDir: s.plan.projectDir,
    runId: s.runId,
    attempt: at.attempt,
    grant: at.grant,
    lock: at.lock,
    onSlurm,
    refPaths: s.refPaths(inst),
    backend: s.backend,
  });
  const { logPath } = prepared.job;
  const defer = (write: () => void): void => s.defer(inst.id, write);
  const row = new AttemptRow(s.state, defer, {
    runId: s.runId,
    instance: inst.id,
    stage: inst.stage,
    key: fp.key,
    attempt: at.attempt,
    reason: a.reasons.join('; '),
    logPath,
  });
  s.started(inst.id, logPath, at.attempt);
  s.bus.emit({ type: 'started', instance: inst.id, key: fp.key, attempt: at.attempt, logPath, gpuIds: at.grant.gpuIds });
  const t1 = performance.now();
  // resources.time is a wall-clock limit: past it the attempt is stopped and fails (and may be retried).
  // (On Slurm, --time is the limit: Slurm stops the job and the executor reports TIMEOUT.)
  const timeLimitS = onSlurm ? 0 : Math.max(inst.resources.timeSeconds, 0);
  const ended = await submitAndWait({
    executor: s.executorFor(inst),
    request: jobRequest(prepared, inst, at.grant, onSlurm, s.plan.projectDir),
    onEvent: (e) => s.bus.emit({ ...e, instance: inst.id }),
    signal: at.signal,
    timeLimitS,
    graceMs: s.cancelGraceMs,
    clock: s.clock,
  });
  const recordTo = { bus: s.bus, row, defer, instance: inst.id, key: fp.key, recordSuccess: at.recordSuccess };
  if (!ended.started) {
    cleanUpJob(prepared);
    return record({ status: 'not-started', message: ended.message }, { ...recordTo, seconds: 0 });
  }
  const classified = classify(ended, {
    aborted: at.signal.aborted,
    timeLimitS,
    mayRetryLostLock: at.mayRetryLostLock,
    entry: (known) => s.checkEntry(fp.key, known),
  });
  cleanUpJob(prepared);
  return record(classified, { ...recordTo, exit: ended.exit, seconds: (performance.now() - t1) / 1000 });
}
