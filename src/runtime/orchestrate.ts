// `smke run` without the command line, in named phases:
//
//   fastPath        answer from the no-op snapshot: nothing changed since a fully cached run
//   analysePlan     cache keys, what is cached and what must run (and why)
//   recordCached    the cached instances: recorded as used by this run, results/ links
//   chooseExecutors the local and Slurm executors the instances to run need
//   schedule        run them in dependency order, each through an InstanceRun
//                   (lock, reuse, remote pull, then ./attempt.ts for the attempt itself)
//   finish          count, close the run's row, write the snapshot for the next fast path

import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Plan, StageInstance } from '../compiler/plan.js';
import { analyse, cutoffReason, deps, MissingInputsError, resolveNames, upstreamOutputs, withUpstream, type Analysed, type Analysis } from './analyse.js';
import { acquireLock, runAttempt, upstreamPaths, type AttemptOutcome, type AttemptScope, type Clock } from './attempt.js';
import { describeFailure, type AttemptFailure } from './attempt-failure.js';
import { Digester } from './digest.js';
import { EXIT } from './errors.js';
import type { EventBus } from './events.js';
import type { Executor } from './executors/executor.js';
import type { LocalExecutor } from './executors/local.js';
import { prestartPool } from './pool-start.js';
import { cellName, layout as makeLayout, type Layout } from './layout.js';
import { cleanLockLeftovers, release } from './locks.js';
import { Scheduler, type FinalState, type Grant, type Outcome, type Task } from './scheduler.js';
import type { StateDb, EntryFile } from './state.js';
import { openStateDb } from './staterepair.js';
import { checkResultsDir } from './results.js';
import { answerNoop, checkSnapshot, makeSnapshot, writeSnapshot } from './noop-snapshot.js';
import { planDigest } from './plancache.js';
import { privateDb, privateDir } from './secrets.js';
import type { CacheKey } from './cache-key.js';
import { fingerprint } from './fingerprint.js';
import { adoptEntry, checkEntry, checkLinkable, cleanTmp, linkResult, syncEntries, tmpName } from './store.js';
import { bootId, syncFileSystem } from './durability.js';
import { fileSignature } from './signature.js';
import { waitUnlessAborted } from './wait.js';
import type { RemoteConfig, RemoteStore } from './remote.js';

export interface RunOptions {
  plan: Plan;
  bus: EventBus;
  store?: string;
  jobs?: number;
  /** GPU pool size; detected when absent. */
  gpus?: number;
  keepGoing?: boolean;
  dryRun?: boolean;
  only?: string[];
  force?: string[];
  executor?: Executor;
  /** The executor of stages that do not choose one (`executor = "..."`): 'local' (default) or 'slurm'. */
  executorName?: string;
  argv?: string[];
  env?: Record<string, string | undefined>;
  backend?: string;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal?: AbortSignal;
  /** How often to look at a lock held by another run. */
  lockPollMs?: number;
  /** Grace period between SIGTERM and SIGKILL when cancelling a job. */
  cancelGraceMs?: number;
  /** The remote cache: entries are pulled instead of run, and what is published is pushed (./remote.ts). */
  remote?: RemoteConfig;
  /** Lock polls and time limits; tests pass one they advance by hand. */
  clock?: Clock;
  /** The local executor with its first pooled worker already started (./pool-start.ts); runPlan closes it. */
  pool?: LocalExecutor;
  /**
   * The plan digest whose no-op snapshot the caller has just checked and found stale (`smke run`
   * tries it before loading the plan): not checked again for the same plan (a second run of the
   * native stat check, tens of milliseconds of an incremental rerun).
   */
  snapshotChecked?: string;
}

export interface RunSummary {
  exitCode: number;
  ran: number;
  cached: number;
  failed: number;
  skipped: number;
  cancelled: number;
  seconds: number;
}

/** The GPUs of this machine, without starting a process (`nvidia-smi` costs ~100 ms). */
export function detectGpus(): number {
  try {
    return readdirSync('/proc/driver/nvidia/gpus').length;
  } catch {
    return 0;
  }
}

const realClock: Clock = {
  sleep: waitUnlessAborted,
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** How many lost-lock retries one run makes in all, before a lost lock is a failure like any other. */
const LOST_LOCK_RETRIES = 3;

export async function runPlan(opts: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const { plan, bus } = opts;
  const lay: Layout = makeLayout(plan.projectDir, opts.store);
  privateDir(lay.smkeDir);
  for (const d of [lay.smkeDir, lay.storeDir, lay.tmpDir, lay.locksDir]) mkdirSync(d, { recursive: true });
  checkResultsDir(lay.resultsDir);
  const state = openStateDb(lay, (message) => bus.emit({ type: 'warning', message }), opts.store !== undefined);
  privateDb(lay.dbPath);
  try {
    return await runWithState(opts, lay, state, t0);
  } finally {
    state.close();
    // The caller's head start, if this run did not use it (a no-op, a dry run).
    opts.pool?.close();
  }
}

async function runWithState(opts: RunOptions, lay: Layout, state: StateDb, t0: number): Promise<RunSummary> {
  const { plan } = opts;
  const env = opts.env ?? process.env;
  const only = opts.only?.length ? withUpstream(plan, resolveNames(plan, opts.only)) : undefined;
  const force = opts.force?.length ? resolveNames(plan, opts.force) : undefined;
  const digest = planDigest(plan);
  const seconds = (): number => (performance.now() - t0) / 1000;

  if (digest && !only && !force && !opts.dryRun && digest !== opts.snapshotChecked) {
    const noop = await fastPath(opts, lay, digest, env, t0);
    if (noop) return noop;
  }

  // The first pooled worker starts now (if the caller did not start it), while the plan is analysed.
  const local =
    opts.dryRun || opts.executor ? undefined : (opts.pool ?? (await prestartPool(plan, { defaultExecutor: defaultExecutorOf(opts), logsDir: lay.logsDir })));
  try {
    return await analyseAndRun(opts, lay, state, { env, only, force, digest, local, seconds });
  } finally {
    // Used or not: its open pipes would keep this process alive (a second close is harmless).
    local?.close();
  }
}

async function analyseAndRun(
  opts: RunOptions,
  lay: Layout,
  state: StateDb,
  r: {
    env: Record<string, string | undefined>;
    only?: Set<string>;
    force?: Set<string>;
    digest?: string;
    local?: LocalExecutor;
    seconds: () => number;
  },
): Promise<RunSummary> {
  const { plan, bus } = opts;
  const { env, only, force, digest, seconds } = r;
  const { analysis, digester } = await analysePlan(opts, lay, state, env, only, force);
  const cachedItems = analysis.items.filter((a) => a.action === 'cached');
  const toRun = analysis.items.filter((a) => a.action === 'run');
  if (opts.dryRun) return dryRunSummary(bus, analysis, cachedItems.length, seconds());

  const runId = state.startRun(plan.file, plan.profile, opts.argv ?? []);
  const used = new UsedEntries(lay, state, runId);
  recordCached(state, bus, used, runId, cachedItems);

  const counts = { ran: 0, cached: cachedItems.length, failed: 0, skipped: 0, cancelled: 0 };
  const executors = await chooseExecutors(opts, toRun, r.local);
  const final = await schedule(opts, { lay, state, runId, digester, analysis, used, counts, executors, toRun, later: new Later(state) });
  const synced = await syncRecordedEntries(lay, state);

  const exitCode = finish(state, runId, counts, final, opts.signal?.aborted === true);
  // The fast path trusts stats alone, so it may cover only entries known to be on disk.
  if (exitCode === EXIT.ok && synced && digest && !only && !digester.racy) writeFastPathSnapshot(lay, plan, digest, digester, analysis, used, runId, opts.argv);
  const summary = { exitCode, ...counts, seconds: seconds() };
  bus.emit({ type: 'summary', ...summary, dryRun: false });
  return summary;
}

/**
 * Make durable, together, every entry recorded in this boot and not known
 * synced: those this run published through pooled workers (which do not sync
 * before their rename), verified or reused, and any a killed run left
 * (./durability.ts). One sync of the store's file system; if that cannot be
 * done, entry by entry. False when neither worked: the records keep saying
 * that those entries are to be re-read after a crash.
 */
async function syncRecordedEntries(lay: Layout, state: StateDb): Promise<boolean> {
  const boot = bootId();
  if (boot === undefined) return true;
  // Taken before the sync: an entry recorded meanwhile by another run is not covered by it.
  const keys = state.unsyncedEntries(boot);
  if (keys.length === 0) return true;
  if (!(await syncFileSystem(lay.storeDir))) {
    try {
      await syncEntries(keys.map((k) => join(lay.storeDir, k)));
    } catch {
      return false;
    }
  }
  state.markSynced(keys);
  return true;
}

/** Count the final states into `counts`, close the run's row; the exit code. */
function finish(state: StateDb, runId: number, counts: Omit<RunSummary, 'exitCode' | 'seconds'>, final: Map<string, FinalState>, cancelled: boolean): number {
  for (const s of final.values()) {
    if (s === 'failed') counts.failed++;
    else if (s === 'skipped') counts.skipped++;
    else if (s === 'cancelled') counts.cancelled++;
  }
  const exitCode = cancelled ? EXIT.interrupted : counts.failed > 0 ? EXIT.failed : EXIT.ok;
  state.finishRun(runId, cancelled ? 'cancelled' : counts.failed ? 'failed' : 'succeeded', counts);
  return exitCode;
}

/** Nothing changed since a run that found everything cached: answer from its snapshot (./noop-snapshot.ts), without analysing the plan or hashing anything. */
async function fastPath(opts: RunOptions, lay: Layout, digest: string, env: Record<string, string | undefined>, t0: number): Promise<RunSummary | undefined> {
  // runPlan's callers (tests, tools) get every instance's events, as from the ordinary path.
  const snap = await checkSnapshot(lay, digest, env, { instances: true });
  return snap && answerNoop(snap, lay, opts.bus, opts.plan.file, opts.plan.profile, opts.argv ?? [], t0);
}

/** Keys, and what is cached and what must run; a missing input stops a real run here. */
async function analysePlan(
  opts: RunOptions,
  lay: Layout,
  state: StateDb,
  env: Record<string, string | undefined>,
  only: Set<string> | undefined,
  force: Set<string> | undefined,
): Promise<{ analysis: Analysis; digester: Digester }> {
  const { plan, bus } = opts;
  cleanTmp(lay.tmpDir, lay.locksDir);
  cleanLockLeftovers(lay.locksDir);
  state.reapDeadRuns();

  const digester = await Digester.create(state);
  const analysis = await analyse({ plan, layout: lay, state, digester, env, force, select: only, repair: !opts.dryRun });
  for (const w of analysis.warnings) bus.emit({ type: 'warning', message: w });
  for (const a of analysis.items) {
    // A pending instance has no key yet (it is known once its upstream has run).
    bus.emit({ type: 'planned', instance: a.inst.id, stage: a.inst.stage, key: a.fp.pending ? '' : a.fp.key, action: a.action, reasons: a.reasons });
  }
  // Nothing starts while a needed input is missing: the user gets every
  // missing input at once, and no branch is left half-done.
  if (analysis.waiting.length && !opts.dryRun) throw new MissingInputsError(analysis.waiting);
  return { analysis, digester };
}

function dryRunSummary(bus: EventBus, analysis: Analysis, cached: number, seconds: number): RunSummary {
  for (const w of analysis.waiting) bus.emit({ type: 'warning', message: `${w.inst.id} cannot run yet: ${w.reason}` });
  const s = { exitCode: analysis.waiting.length ? EXIT.failed : EXIT.ok, ran: 0, cached, failed: 0, skipped: 0, cancelled: 0, seconds };
  bus.emit({ type: 'summary', ...s, dryRun: true });
  return s;
}

/**
 * The store entries this run used: recorded in the state database with the
 * instance's fingerprint, linked under results/, and remembered (files and
 * links) for the fast-path snapshot.
 */
class UsedEntries {
  readonly files = new Map<string, EntryFile[]>();
  readonly links = new Map<string, string[]>();
  private readonly listed = new Map<string, Set<string>>();

  constructor(
    private readonly lay: Layout,
    private readonly state: StateDb,
    private readonly runId: number,
  ) {}

  /** Call inside a state transaction. */
  record(a: Analysed, files: EntryFile[] | undefined, verified: boolean, ran = false): void {
    const { state, runId, lay } = this;
    if (files) this.files.set(a.fp.key, files);
    state.recordRunInstance(runId, a.inst.id, a.fp.key, ran);
    if (files && verified) state.recordEntry(a.fp.key, a.inst.id, files, runId, bootId() ?? null);
    if (a.prevKey !== a.fp.key) {
      state.recordFingerprint({ instance: a.inst.id, stage: a.inst.stage, key: a.fp.key, fingerprint: JSON.stringify(a.fp), run_id: runId });
    }
    // The link was made when this key was recorded; re-reading 10,000 links
    // on a no-op costs more than the rest of the run. One readdir per
    // directory still notices links that were deleted.
    const cell = cellName(a.inst);
    const linkDir = cell === undefined ? lay.resultsDir : join(lay.resultsDir, a.inst.stage);
    let names = this.links.get(linkDir);
    if (!names) this.links.set(linkDir, (names = []));
    names.push(cell ?? a.inst.stage);
    if (a.prevKey === a.fp.key && this.linkPresent(linkDir, cell ?? a.inst.stage)) return;
    linkResult(lay.resultsDir, a.inst.stage, cell, join(lay.storeDir, a.fp.key));
  }

  private linkPresent(dir: string, name: string): boolean {
    let names = this.listed.get(dir);
    if (!names) {
      try {
        names = new Set(readdirSync(dir));
      } catch {
        names = new Set();
      }
      this.listed.set(dir, names);
    }
    return names.has(name);
  }
}

function recordCached(state: StateDb, bus: EventBus, used: UsedEntries, runId: number, cachedItems: Analysed[]): void {
  state.transaction(() => {
    for (const a of cachedItems) used.record(a, a.files, a.verified === true);
    state.touchEntries(
      cachedItems.map((a) => a.fp.key),
      runId,
    );
  });
  for (const a of cachedItems) bus.emit({ type: 'cached', instance: a.inst.id, key: a.fp.key });
}

interface Executors {
  /** How many instances to run go to Slurm. */
  slurmCount: number;
  onSlurm(inst: StageInstance): boolean;
  executorFor(inst: StageInstance): Executor;
  close(): void;
}

const defaultExecutorOf = (opts: RunOptions): string => opts.executorName ?? opts.executor?.name ?? 'local';

/**
 * A stage may choose its executor (`executor = "slurm"`); --executor sets the
 * default. Each executor is made only when an instance to run needs it
 * (`local`: the one started ahead, ./pool-start.ts, if any).
 */
async function chooseExecutors(opts: RunOptions, toRun: Analysed[], local: LocalExecutor | undefined): Promise<Executors> {
  const defaultExecutor = defaultExecutorOf(opts);
  const onSlurm = (inst: StageInstance): boolean => (inst.executor ?? defaultExecutor) === 'slurm';
  const slurmCount = toRun.filter((a) => onSlurm(a.inst)).length;
  const slurmExecutor =
    slurmCount === 0
      ? undefined
      : opts.executor?.name === 'slurm'
        ? opts.executor
        : new (await import('./executors/slurm.js')).SlurmExecutor({ projectDir: opts.plan.projectDir });
  // Loaded only when something runs here: a no-op run never needs it.
  const executor =
    (opts.executor?.name === 'slurm' ? undefined : opts.executor) ??
    (toRun.length > slurmCount ? (local ?? new (await import('./executors/local.js')).LocalExecutor()) : undefined);
  if (executor !== local) local?.close();
  return {
    slurmCount,
    onSlurm,
    executorFor: (inst) => (onSlurm(inst) ? slurmExecutor! : executor!),
    close: () => {
      (slurmExecutor as { close?: () => void } | undefined)?.close?.();
      (executor as { close?: () => void } | undefined)?.close?.();
    },
  };
}

interface ScheduleInput {
  lay: Layout;
  state: StateDb;
  runId: number;
  digester: Digester;
  analysis: Analysis;
  used: UsedEntries;
  counts: { ran: number; cached: number };
  executors: Executors;
  toRun: Analysed[];
  later: Later;
}

/**
 * Work that may wait until the scheduler has launched what a success
 * unblocked: the records of attempts and successes. It runs in batches, at
 * most LATER_DELAY_MS after it was added (or at once when LATER_BATCH are
 * waiting), and all of it before the run finishes. Each batch is one SQLite
 * transaction: its commit, not the statements, is most of what a record
 * costs, and 1,000 trivial stages took 0.45-0.7 s of the orchestrator's CPU in
 * a commit per stage against 0.23 s in batches. A run killed meanwhile loses
 * the batch, as it lost the records of the turn before: the next run finds
 * the published entries in the store.
 */
const LATER_DELAY_MS = 50;
const LATER_BATCH = 256;

class Later {
  private readonly queue: { instance: string; fn: () => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Instances whose deferred work failed, with the error. */
  readonly failed = new Map<string, string>();

  constructor(private readonly state: StateDb) {}

  add(instance: string, fn: () => void): void {
    this.queue.push({ instance, fn });
    // Never now: the caller goes on first (a launch, the next record).
    if (this.queue.length === LATER_BATCH) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.drain(), 0);
    } else this.timer ??= setTimeout(() => this.drain(), LATER_DELAY_MS);
  }

  /**
   * Run what is left now, in order: one transaction for all (one commit, where each write of its own
   * took SQLite's locks and a WAL commit), each in a savepoint of its own, so that one that fails
   * leaves none of its writes and the others are kept.
   */
  drain(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    const why = (e: unknown): string => (e instanceof Error ? e.message : String(e));
    try {
      this.state.transaction(() => {
        for (const { instance, fn } of batch) {
          try {
            this.state.transaction(fn);
          } catch (e) {
            // The first failure of an instance says why (a failed insert of its row fails its close too).
            if (!this.failed.has(instance)) this.failed.set(instance, why(e));
          }
        }
      });
    } catch (e) {
      // The commit itself failed: none of them was written.
      for (const { instance } of batch) if (!this.failed.has(instance)) this.failed.set(instance, why(e));
    }
  }
}

/** Run every instance that must run, in dependency order, as the pools allow; the final state of each. */
async function schedule(opts: RunOptions, s: ScheduleInput): Promise<Map<string, FinalState>> {
  const { bus } = opts;
  const { executors, toRun } = s;
  const { onSlurm } = executors;
  // Slurm allocates cpus, memory and GPUs itself: its jobs take nothing from the local pools.
  const needGpus = toRun.some((a) => !onSlurm(a.inst) && a.inst.resources.gpus > 0);
  const scheduler = new Scheduler({
    jobs: Math.max(1, opts.jobs ?? (executors.slurmCount ? 10_000 : availableParallelism())),
    keepGoing: opts.keepGoing === true,
    pools: {
      cpus: Math.max(opts.jobs ?? 0, availableParallelism()),
      gpus: opts.gpus ?? (needGpus ? detectGpus() : 0),
      memBytes: totalmem(),
    },
  });
  const onAbort = (): void => scheduler.cancel();
  if (opts.signal?.aborted) scheduler.cancel();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  // The SDK is loaded only when a remote is configured and something must run.
  const remote: RemoteStore | undefined = opts.remote && toRun.length ? new (await import('./remote.js')).RemoteStore(opts.remote) : undefined;
  const tasks: Task[] = toRun.map((a) => ({
    id: a.inst.id,
    deps: deps(a.inst),
    retries: a.inst.retries,
    resources: onSlurm(a.inst) ? { ...a.inst.resources, cpus: 0, gpus: 0, memBytes: 0 } : a.inst.resources,
  }));
  for (const t of tasks) bus.emit({ type: 'queued', instance: t.id });
  const runs = new InstanceRuns(opts, s, remote);
  const keyOf = (id: string): string => s.analysis.byId.get(id)?.fp.key ?? '';
  const emitFailed = (id: string, error: string): void => {
    const l = runs.lastLog.get(id);
    bus.emit({ type: 'failed', instance: id, key: keyOf(id), error, ...runs.failureOf(id), logPath: l?.logPath, attempt: l?.attempt ?? 0 });
  };
  return scheduler
    .run(tasks, {
      run: (task, attempt, grant, signal) => runs.run(task.id, attempt, grant, signal),
      onRetry: (t, attempt, error) => bus.emit({ type: 'retried', instance: t.id, attempt, error, ...runs.failureOf(t.id) }),
      onSkip: (t, because) => bus.emit({ type: 'skipped', instance: t.id, because }),
      onFail: (t, error) => emitFailed(t.id, error),
    })
    .then((final) => {
      // A success whose records could not be written (the database failed): its entry is in the store
      // and the next run finds it, but this run did not record it (nor, perhaps, link it in results/).
      // (An instance that failed anyway keeps its own failure.)
      s.later.drain();
      for (const [id, error] of s.later.failed) {
        if (final.get(id) !== 'succeeded') continue;
        final.set(id, 'failed');
        s.counts.ran--;
        emitFailed(id, `recording its result failed: ${error}`);
      }
      return final;
    })
    .finally(async () => {
      opts.signal?.removeEventListener('abort', onAbort);
      executors.close();
      await runs.pushed();
      remote?.close();
      s.later.drain();
    });
}

/**
 * Runs one instance for the scheduler: settles a key that waited for its
 * upstream (early cutoff), reuses an entry published meanwhile (by another
 * run holding the lock, or in the remote cache), else makes an attempt
 * (./attempt.ts) and, when another run took the lock over, waits for that
 * run and reuses its result.
 */
class InstanceRuns {
  readonly lastLog = new Map<string, { logPath: string; attempt: number }>();
  /** The failure of each instance's last attempt, for the `failed` and `retried` events. */
  private readonly failures = new Map<string, AttemptFailure>();
  /** Instances that ran in this run (an early cutoff says which upstreams reran). */
  private readonly ranNow = new Set<string>();
  private lostLocks = 0;
  private readonly pushes: Promise<void>[] = [];
  private readonly scope: AttemptScope;
  private readonly upstreamOutput: ReturnType<typeof upstreamOutputs>;
  private readonly clock: Clock;

  constructor(
    private readonly opts: RunOptions,
    private readonly s: ScheduleInput,
    private readonly remote: RemoteStore | undefined,
  ) {
    const { plan, bus } = opts;
    const { lay, state, runId, digester, analysis, executors } = s;
    this.clock = opts.clock ?? realClock;
    const instById = new Map(plan.instances.map((i) => [i.id, i]));
    this.upstreamOutput = upstreamOutputs(instById, (id) => s.used.files.get(this.keyOf(id)));
    this.scope = {
      plan,
      lay,
      state,
      bus,
      runId,
      clock: this.clock,
      backend: opts.backend,
      cancelGraceMs: opts.cancelGraceMs,
      executorFor: executors.executorFor,
      onSlurm: executors.onSlurm,
      refPaths: (inst) =>
        upstreamPaths(
          inst,
          lay.storeDir,
          (id) => analysis.byId.get(id)?.inst ?? instById.get(id),
          (id) => this.keyOf(id),
        ),
      checkEntry: (key, known) => checkEntry(join(lay.storeDir, key), key, digester, known),
      started: (instance, logPath, attempt) => this.lastLog.set(instance, { logPath, attempt }),
      defer: (instance, write) => s.later.add(instance, write),
    };
  }

  private keyOf(id: string): string {
    return this.s.analysis.byId.get(id)?.fp.key ?? '';
  }

  failureOf(id: string): { reason?: AttemptFailure } {
    const f = this.failures.get(id);
    return f ? { reason: f } : {};
  }

  pushed(): Promise<unknown> {
    return Promise.all(this.pushes);
  }

  async run(id: string, attempt: number, grant: Grant, signal: AbortSignal): Promise<Outcome> {
    this.failures.delete(id);
    const o = await this.runInstance(this.s.analysis.byId.get(id)!, attempt, grant, signal);
    if (o.status !== 'failed') return o;
    this.failures.set(id, o.failure);
    return { status: 'failed', error: describeFailure(o.failure) };
  }

  private async runInstance(a: Analysed, attempt: number, grant: Grant, signal: AbortSignal): Promise<Exclude<AttemptOutcome, { status: 'lost-lock' }>> {
    this.settleKey(a);
    const { inst, fp } = a;
    const { lay, digester } = this.s;
    const entryDir = join(lay.storeDir, fp.key);
    const lockPath = join(lay.locksDir, fp.key);
    const forced = a.reasons.includes('forced');
    for (;;) {
      // A complete entry needs no lock to be used: a cut-off instance takes none.
      if (a.cutoffFrom && !forced) {
        const check = checkEntry(entryDir, fp.key, digester);
        if (check.state === 'ok') return this.cutOff(a, attempt, a.cutoffFrom, check.files);
      }

      // Take the instance's lock; if another run holds it, wait and reuse its result.
      const got = await acquireLock({
        lockPath,
        instance: inst.id,
        bus: this.opts.bus,
        clock: this.clock,
        pollMs: this.opts.lockPollMs ?? 200,
        signal,
        published: () => checkEntry(entryDir, fp.key, digester).state === 'ok',
      });
      if (got.kind === 'cancelled') return { status: 'cancelled' };
      if (got.kind === 'published') return this.reused(a);
      const { lock } = got;
      // Published by another run between our analysis and the lock, or
      // (early cutoff) the key became known only now and is cached.
      if (!forced) {
        const check = checkEntry(entryDir, fp.key, digester);
        if (check.state === 'ok') {
          release(lockPath, lock.token);
          return a.cutoffFrom ? this.cutOff(a, attempt, a.cutoffFrom, check.files) : this.reused(a);
        }
      }
      // Someone else ran it already: take their result from the remote cache.
      if (this.remote?.pulls && !forced && (await this.pull(this.remote, fp.key, entryDir, attempt, signal))) {
        release(lockPath, lock.token);
        return this.reused(a, true);
      }

      const o = await runAttempt(this.scope, a, {
        attempt,
        grant,
        signal,
        lock,
        mayRetryLostLock: this.lostLocks < LOST_LOCK_RETRIES,
        recordSuccess: (files, closeRow) => {
          // A results path taken by the user's own files fails the stage now, as the link itself would.
          checkLinkable(this.s.lay.resultsDir, inst.stage, cellName(inst));
          // What the stages this one unblocks need (their keys, with early cutoff), now...
          this.s.used.files.set(fp.key, files);
          this.s.counts.ran++;
          this.ranNow.add(inst.id);
          // ...the records and the results link once they have started: in a chain, off the path from
          // one stage to the next (a deferred write: one savepoint, so never one without the other).
          this.s.later.add(inst.id, () => {
            this.s.used.record(a, files, true, true);
            closeRow();
          });
        },
      });
      // Another run took the instance over (our lock looked stale to it): wait for it and reuse its result.
      if (o.status === 'lost-lock') {
        this.lostLocks++;
        continue;
      }
      if (o.status === 'succeeded' && this.remote?.pushes) this.pushes.push(this.push(this.remote, inst.id, fp.key, entryDir));
      return o;
    }
  }

  /**
   * Early cutoff: an instance planned while its upstream had still to run
   * gets its real key now that the upstream outputs are in the store; if that
   * key is cached, it does not run at all.
   */
  private settleKey(a: Analysed): void {
    const was = a.fp.pending;
    if (!was) return;
    a.fp = fingerprint({
      inst: a.inst,
      projectDir: this.opts.plan.projectDir,
      // The upstreams' settled keys, not those planned: a pending upstream's key changed when it ran,
      // and the manifest and `smke diff` name the entries this one really read.
      upstreamKeys: new Map(Object.entries(a.fp.upstream).map(([id, planned]) => [id, this.s.analysis.byId.get(id)?.fp.key ?? planned])),
      upstreamOutput: this.upstreamOutput,
      planned: a.fp.parts,
      digester: this.s.digester,
      env: this.opts.env ?? process.env,
    });
    if (a.fp.pending) throw new Error(`internal: ${a.inst.id} ran before its upstream ${a.fp.pending.join(', ')}`);
    // Which upstreams reran: reasons and history say what was cut off.
    a.cutoffFrom = was;
  }

  /** The entry is in the store already (published by another run, or pulled): use it. */
  private reused(a: Analysed, pulled = false): Exclude<AttemptOutcome, { status: 'lost-lock' }> {
    const { inst, fp } = a;
    const check = checkEntry(join(this.s.lay.storeDir, fp.key), fp.key, this.s.digester);
    if (check.state !== 'ok') return { status: 'failed', failure: { kind: 'entry-vanished' } };
    this.s.state.transaction(() => this.s.used.record(a, check.files, true));
    this.s.counts.cached++;
    this.opts.bus.emit({ type: 'cached', instance: inst.id, key: fp.key, reused: true, ...(pulled && { pulled }) });
    return { status: 'succeeded' };
  }

  private cutOff(a: Analysed, attempt: number, from: string[], files: EntryFile[]): { status: 'succeeded' } {
    const { inst, fp } = a;
    const { state, runId } = this.s;
    const reason = cutoffReason(from, this.ranNow);
    state.transaction(() => {
      this.s.used.record(a, files, true);
      // Recorded as an attempt that did not run, so `smke history` says why.
      const id = state.startAttempt({ runId, instance: inst.id, stage: inst.stage, key: fp.key, attempt, reason, logPath: '' });
      state.finishAttempt(id, 'cut off', {});
    });
    this.s.counts.cached++;
    this.opts.bus.emit({ type: 'cached', instance: inst.id, key: fp.key, cutoff: reason });
    return { status: 'succeeded' };
  }

  /** Downloads `key` into the store; false when the remote lacks it or its copy is damaged (then the stage runs here). */
  private async pull(r: RemoteStore, key: CacheKey, entryDir: string, attempt: number, signal: AbortSignal): Promise<boolean> {
    const tmp = join(this.s.lay.tmpDir, `${tmpName(key, attempt)}.pull`);
    try {
      if (!(await r.pull(key, tmp, this.s.digester, signal))) return false;
      await adoptEntry(tmp, entryDir);
      return true;
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      if (!signal.aborted)
        this.opts.bus.emit({ type: 'warning', message: `remote cache: ${e instanceof Error ? e.message : String(e)}; running the stage here instead` });
      return false;
    }
  }

  private push(r: RemoteStore, instance: string, key: CacheKey, entryDir: string): Promise<void> {
    const { bus } = this.opts;
    return r.push(key, entryDir, this.s.digester).then(
      (how) => {
        if (how === 'pushed') bus.emit({ type: 'pushed', instance, key });
      },
      // A remote that is down must not fail a run whose results are safe in the local store.
      (e: unknown) =>
        bus.emit({
          type: 'warning',
          instance,
          message: `remote cache: ${e instanceof Error ? e.message : String(e)} (the result is in the local store; the next run pushes nothing for it)`,
        }),
    );
  }
}

/** Everything is cached now: remember what that depended on, for the next run's fast path (./noop-snapshot.ts). */
function writeFastPathSnapshot(
  lay: Layout,
  plan: Plan,
  digest: string,
  digester: Digester,
  analysis: Analysis,
  used: UsedEntries,
  runId: number,
  argv: string[] | undefined,
): void {
  const env: Record<string, string | null> = {};
  const entries: [string, { path: string; sig: string }[]][] = [];
  for (const a of analysis.items) {
    Object.assign(env, a.fp.parts.env);
    const files = used.files.get(a.fp.key);
    if (!files) return;
    entries.push([a.fp.key, files.map((f) => ({ path: f.path, sig: fileSignature(f.size, f.mtimeNs, f.ino, f.ctimeNs) }))]);
  }
  const snap = makeSnapshot({
    plan: digest,
    storeDir: lay.storeDir,
    instances: plan.instances.map((i) => `${i.id}\t${i.stage}\t${analysis.byId.get(i.id)?.fp.key ?? ''}`),
    env,
    inputs: digester.observed,
    entries,
    links: [...used.links],
    runId,
  });
  if (snap) writeSnapshot(lay, digest, snap, argv);
}
