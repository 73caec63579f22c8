// `smke run` without the command line: analyse the plan, then schedule every
// instance that is not cached through an executor, and record what happened.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plan, StageInstance } from '../compiler/plan.js';
import { registry } from '../stages/registry.js';
import { analyse, cutoffReason, deps, MissingInputsError, resolveNames, upstreamOutputs, withUpstream, type Analysed } from './analyse.js';
import { Digester } from './digest.js';
import type { EventBus } from './events.js';
import type { Executor, JobHandle } from './executors/types.js';
import { refKey, seedFromKey, type JobSpec } from './job.js';
import { cellName, layout as makeLayout, safeName, type Layout } from './layout.js';
import { breakStale, cleanLockLeftovers, readLock, release, staleLock, tryAcquire, type LockInfo } from './locks.js';
import { sleep } from '../data/http.js';
import { Scheduler, type Grant, type Outcome, type Task } from './scheduler.js';
import type { StateDb, EntryFile } from './state.js';
import { openStateDb } from './staterepair.js';
import { checkResultsDir } from './results.js';
import { answerNoop, checkSnapshot, writeSnapshot } from './noop.js';
import { planDigest } from './plancache.js';
import { passedEnvNames } from './passenv.js';
import { privateDb, privateDir } from './secrets.js';
import type { CacheKey } from './cache-key.js';
import { fingerprint, STORE_FORMAT } from './fingerprint.js';
import { adoptEntry, checkEntry, cleanTmp, linkResult, tmpName } from './store.js';
import { fileSignature } from './signature.js';
import { smkeVersion } from './version.js';
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

/** Exit codes of `smke run` (docs/runtime.md). */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** The GPUs of this machine, without starting a process (`nvidia-smi` costs ~100 ms). */
export function detectGpus(): number {
  try {
    return readdirSync('/proc/driver/nvidia/gpus').length;
  } catch {
    return 0;
  }
}

function workerCommand(jobFile: string): string[] {
  const bin = fileURLToPath(new URL('../../bin/smke.js', import.meta.url));
  return [process.execPath, bin, 'worker', jobFile];
}

/** Per process: every attempt's job file, events file and tmp dir get a name no other attempt has (./store.ts tmpName). */
let jobSeq = 0;

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
  }
}

async function runWithState(opts: RunOptions, lay: Layout, state: StateDb, t0: number): Promise<RunSummary> {
  const { plan, bus } = opts;
  const env = opts.env ?? process.env;
  const only = opts.only?.length ? withUpstream(plan, resolveNames(plan, opts.only)) : undefined;
  const force = opts.force?.length ? resolveNames(plan, opts.force) : undefined;
  const digest = planDigest(plan);
  const seconds = (): number => (performance.now() - t0) / 1000;

  if (digest && !only && !force && !opts.dryRun) {
    const snap = checkSnapshot(lay, digest, env);
    if (snap) return answerNoop(snap, lay, bus, plan.file, plan.profile, opts.argv ?? [], t0);
  }

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
  const cachedItems = analysis.items.filter((a) => a.action === 'cached');
  const toRun = analysis.items.filter((a) => a.action === 'run');
  // Nothing starts while a needed input is missing: the user gets every
  // missing input at once, and no branch is left half-done.
  if (analysis.waiting.length && !opts.dryRun) throw new MissingInputsError(analysis.waiting);

  if (opts.dryRun) {
    for (const w of analysis.waiting) bus.emit({ type: 'warning', message: `${w.inst.id} cannot run yet: ${w.reason}` });
    const s = {
      exitCode: analysis.waiting.length ? EXIT.failed : EXIT.ok,
      ran: 0,
      cached: cachedItems.length,
      failed: 0,
      skipped: 0,
      cancelled: 0,
      seconds: seconds(),
    };
    bus.emit({ type: 'summary', ...s, dryRun: true });
    return s;
  }

  const runId = state.startRun(plan.file, plan.profile, opts.argv ?? []);
  const entryFiles = new Map<string, EntryFile[]>();
  const links = new Map<string, string[]>();
  const recordUse = (a: Analysed, files: EntryFile[] | undefined, verified: boolean, ran = false): void => {
    if (files) entryFiles.set(a.fp.key, files);
    state.recordRunInstance(runId, a.inst.id, a.fp.key, ran);
    if (files && verified) state.recordEntry(a.fp.key, a.inst.id, files, runId);
    if (a.prevKey !== a.fp.key) {
      state.recordFingerprint({ instance: a.inst.id, stage: a.inst.stage, key: a.fp.key, fingerprint: JSON.stringify(a.fp), run_id: runId });
    }
    // The link was made when this key was recorded; re-reading 10,000 links
    // on a no-op costs more than the rest of the run. One readdir per
    // directory still notices links that were deleted.
    const cell = cellName(a.inst);
    const linkDir = cell === undefined ? lay.resultsDir : join(lay.resultsDir, a.inst.stage);
    let names = links.get(linkDir);
    if (!names) links.set(linkDir, (names = []));
    names.push(cell ?? a.inst.stage);
    if (a.prevKey === a.fp.key && linkPresent(linkDir, cell ?? a.inst.stage)) return;
    linkResult(lay.resultsDir, a.inst.stage, cell, join(lay.storeDir, a.fp.key));
  };
  const listed = new Map<string, Set<string>>();
  const linkPresent = (dir: string, name: string): boolean => {
    let names = listed.get(dir);
    if (!names) {
      try {
        names = new Set(readdirSync(dir));
      } catch {
        names = new Set();
      }
      listed.set(dir, names);
    }
    return names.has(name);
  };
  state.transaction(() => {
    for (const a of cachedItems) recordUse(a, a.files, a.verified === true);
    state.touchEntries(
      cachedItems.map((a) => a.fp.key),
      runId,
    );
  });
  for (const a of cachedItems) bus.emit({ type: 'cached', instance: a.inst.id, key: a.fp.key });

  const counts = { ran: 0, cached: cachedItems.length, failed: 0, skipped: 0, cancelled: 0 };
  // A stage may choose its executor (`executor = "slurm"`); --executor sets the default. Slurm
  // allocates cpus, memory and GPUs itself: its jobs take nothing from the local pools.
  const defaultExecutor = opts.executorName ?? opts.executor?.name ?? 'local';
  const onSlurm = (inst: StageInstance): boolean => (inst.executor ?? defaultExecutor) === 'slurm';
  const slurmCount = toRun.filter((a) => onSlurm(a.inst)).length;
  const slurmExecutor =
    slurmCount === 0
      ? undefined
      : opts.executor?.name === 'slurm'
        ? opts.executor
        : new (await import('./executors/slurm.js')).SlurmExecutor({ projectDir: plan.projectDir });
  // execa costs ~90 ms to load: a no-op run never needs it.
  const executor =
    (opts.executor?.name === 'slurm' ? undefined : opts.executor) ??
    (toRun.length > slurmCount ? new (await import('./executors/local.js')).LocalExecutor() : undefined);
  const executorFor = (inst: StageInstance): Executor => (onSlurm(inst) ? slurmExecutor! : executor!);
  const needGpus = toRun.some((a) => !onSlurm(a.inst) && a.inst.resources.gpus > 0);
  const scheduler = new Scheduler({
    jobs: Math.max(1, opts.jobs ?? (slurmCount ? 10_000 : availableParallelism())),
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
  const pushes: Promise<void>[] = [];
  const byId = new Map(toRun.map((a) => [a.inst.id, a]));
  const tasks: Task[] = toRun.map((a) => ({
    id: a.inst.id,
    deps: deps(a.inst),
    retries: a.inst.retries,
    resources: onSlurm(a.inst) ? { ...a.inst.resources, cpus: 0, gpus: 0, memBytes: 0 } : a.inst.resources,
  }));
  for (const t of tasks) bus.emit({ type: 'queued', instance: t.id });
  const lockPollMs = opts.lockPollMs ?? 200;
  const lastLog = new Map<string, { logPath: string; attempt: number }>();
  const keyOf = (id: string): string => analysis.byId.get(id)?.fp.key ?? '';

  // Early cutoff: an instance planned while its upstream had still to run
  // gets its real key now that the upstream outputs are in the store; if that
  // key is cached, it does not run at all.
  const instById = new Map(plan.instances.map((i) => [i.id, i]));
  const upstreamOutput = upstreamOutputs(instById, (id) => entryFiles.get(keyOf(id)));
  const settleKey = (a: Analysed): void => {
    const was = a.fp.pending;
    if (!was) return;
    a.fp = fingerprint({
      inst: a.inst,
      projectDir: plan.projectDir,
      upstreamKeys: new Map(Object.entries(a.fp.upstream)),
      upstreamOutput,
      planned: a.fp.parts,
      digester,
      env,
    });
    if (a.fp.pending) throw new Error(`internal: ${a.inst.id} ran before its upstream ${a.fp.pending.join(', ')}`);
    // Which upstreams reran: reasons and history say what was cut off.
    a.cutoffFrom = was;
  };

  const ranNow = new Set<string>();
  let lostLocks = 0;
  const runOne = async (task: Task, attempt: number, grant: Grant, signal: AbortSignal): Promise<Outcome> => {
    const a = byId.get(task.id)!;
    settleKey(a);
    const { inst, fp } = a;
    const executor = executorFor(inst);
    const entryDir = join(lay.storeDir, fp.key);
    const lockPath = join(lay.locksDir, fp.key);
    const reused = (pulled = false): Outcome => {
      const check = checkEntry(entryDir, fp.key, digester);
      if (check.state !== 'ok') return { status: 'failed', error: 'internal: entry vanished' };
      state.transaction(() => recordUse(a, check.files, true));
      counts.cached++;
      bus.emit({ type: 'cached', instance: inst.id, key: fp.key, reused: true, ...(pulled && { pulled }) });
      return { status: 'succeeded' };
    };
    const cutOff = (from: string[], files: EntryFile[]): Outcome => {
      const reason = cutoffReason(from, ranNow);
      state.transaction(() => {
        recordUse(a, files, true);
        // Recorded as an attempt that did not run, so `smke history` says why.
        const id = state.startAttempt({ runId, instance: inst.id, stage: inst.stage, key: fp.key, attempt, reason, logPath: '' });
        state.finishAttempt(id, 'cut off', {});
      });
      counts.cached++;
      bus.emit({ type: 'cached', instance: inst.id, key: fp.key, cutoff: reason });
      return { status: 'succeeded' };
    };

    // A complete entry needs no lock to be used: a cut-off instance takes none.
    if (a.cutoffFrom && !a.reasons.includes('forced')) {
      const check = checkEntry(entryDir, fp.key, digester);
      if (check.state === 'ok') return cutOff(a.cutoffFrom, check.files);
    }

    // Take the instance's lock; if another run holds it, wait and reuse its result.
    let lock: LockInfo | undefined;
    let waitingSaid = false;
    while (!lock) {
      if (signal.aborted) return { status: 'cancelled' };
      const r = tryAcquire(lockPath, inst.id);
      if (r.ok) {
        lock = r.info;
        break;
      }
      const stale = staleLock(lockPath, r.holder);
      if (stale) {
        if (breakStale(lockPath, r.holder)) {
          bus.emit({ type: 'warning', instance: inst.id, message: `took over the stale lock of ${inst.id} (${stale})` });
        }
        continue;
      }
      if (!waitingSaid) {
        bus.emit({ type: 'waiting', instance: inst.id, holder: r.holder ? `pid ${r.holder.pid} on ${r.holder.host}` : 'an unreadable lock file' });
        waitingSaid = true;
      }
      // Aborting ends the wait early; the loop's first line then answers 'cancelled'.
      await sleep(lockPollMs, signal).catch(() => undefined);
      if (!readLock(lockPath) && checkEntry(entryDir, fp.key, digester).state === 'ok') return reused();
    }
    // Published by another run between our analysis and the lock, or
    // (early cutoff) the key became known only now and is cached.
    if (!a.reasons.includes('forced')) {
      const check = checkEntry(entryDir, fp.key, digester);
      if (check.state === 'ok') {
        release(lockPath, lock.token);
        return a.cutoffFrom ? cutOff(a.cutoffFrom, check.files) : reused();
      }
    }
    // Someone else ran it already: take their result from the remote cache.
    if (remote?.pulls && !a.reasons.includes('forced') && (await pullEntry(remote, fp.key, entryDir, attempt, signal))) {
      release(lockPath, lock.token);
      return reused(true);
    }

    // Not the attempt number: two instances sharing a key (or a lost-lock retry) must never
    // share, and so clean up, each other's job file.
    const base = tmpName(fp.key, ++jobSeq);
    const jobFile = join(lay.tmpDir, `${base}.job.json`);
    const logPath = join(lay.logsDir, String(runId), `${safeName(inst.id)}.${attempt}.log`);
    const refPaths: Record<string, string> = {};
    for (const ref of inst.refs) {
      const up = analysis.byId.get(ref.instance)?.inst ?? plan.instances.find((i) => i.id === ref.instance);
      const upKind = up && registry().get(up.kind);
      const spec = up && upKind?.outputs(up.params)[ref.output];
      const upEntry = join(lay.storeDir, keyOf(ref.instance));
      refPaths[refKey(ref.instance, ref.output)] = spec && spec.path !== '.' ? join(upEntry, spec.path) : upEntry;
    }
    const job: JobSpec = {
      format: 1,
      key: fp.key,
      instance: inst.id,
      stage: inst.stage,
      kind: inst.kind,
      kindVersion: inst.kindVersion,
      params: inst.params,
      refPaths,
      symbolic: fp.symbolic,
      fingerprint: fp.parts,
      upstream: fp.upstream,
      projectDir: plan.projectDir,
      tmpDir: join(lay.tmpDir, base),
      entryDir,
      scratchDir: join(lay.scratchDir, fp.key),
      logPath,
      eventsPath: join(lay.tmpDir, `${base}.events.jsonl`),
      lock: { path: lockPath, token: lock.token },
      attempt,
      seed: seedFromKey(fp.key),
      // On Slurm the job asks for the stage's own resources and Slurm picks the GPUs.
      resources: onSlurm(inst) ? { ...inst.resources, gpuIds: [] } : { ...inst.resources, cpus: grant.cpus, gpuIds: grant.gpuIds },
      backend: opts.backend,
      smkeVersion: smkeVersion(),
    };
    // Kinds that may share a process go to the local executor's worker pool
    // (no job file: the job travels over the pool's pipe); GPU jobs, Slurm
    // jobs and stages given variables from smke's environment (a pooled worker
    // has only the allow-list, ./secrets.ts) get a worker process of their own.
    const passEnv = passedEnvNames(inst);
    const pooled = !onSlurm(inst) && task.resources.gpus === 0 && passEnv.length === 0 && registry().get(inst.kind)?.pooled === true;
    if (!pooled) writeFileSync(jobFile, JSON.stringify(job), { mode: 0o600 });
    const attemptId = state.startAttempt({ runId, instance: inst.id, stage: inst.stage, key: fp.key, attempt, reason: a.reasons.join('; '), logPath });
    lastLog.set(inst.id, { logPath, attempt });
    bus.emit({ type: 'started', instance: inst.id, key: fp.key, attempt, logPath, gpuIds: grant.gpuIds });
    const t1 = performance.now();
    let final: { status: string; error?: string } | undefined;
    let handle: JobHandle | undefined;
    const cleanup = (): void => {
      release(lockPath, lock!.token);
      rmSync(jobFile, { force: true });
      rmSync(job.eventsPath, { force: true });
      rmSync(job.tmpDir, { recursive: true, force: true });
    };
    try {
      const extraEnv: Record<string, string> = {};
      if (!onSlurm(inst) && (grant.gpuIds.length || task.resources.gpus === 0)) extraEnv.CUDA_VISIBLE_DEVICES = grant.gpuIds.join(',');
      handle = await executor!.submit(
        {
          name: inst.id,
          command: workerCommand(jobFile),
          cwd: plan.projectDir,
          env: extraEnv,
          passEnv,
          resources: job.resources,
          logPath,
          eventsPath: job.eventsPath,
          pooled: pooled ? job : undefined,
        },
        (e) => {
          if (e.type === 'final') final = e;
          else bus.emit({ ...e, instance: inst.id });
        },
      );
    } catch (e) {
      cleanup();
      const error = `could not start: ${e instanceof Error ? e.message : String(e)}`;
      state.finishAttempt(attemptId, 'failed', { error });
      return { status: 'failed', error };
    }
    const onCancel = (): void => void executor!.cancel(handle!, opts.cancelGraceMs);
    signal.addEventListener('abort', onCancel, { once: true });
    // resources.time is a wall-clock limit: past it the attempt is stopped and fails (and may be retried).
    let timedOut = false;
    // (On Slurm, --time is the limit: Slurm stops the job and the executor reports TIMEOUT.)
    const limit =
      inst.resources.timeSeconds > 0 && !onSlurm(inst)
        ? setTimeout(() => {
            timedOut = true;
            onCancel();
          }, inst.resources.timeSeconds * 1000)
        : undefined;
    const exit = await executor!.wait(handle);
    clearTimeout(limit);
    signal.removeEventListener('abort', onCancel);
    if (timedOut) final = { status: 'failed', error: `timed out after ${inst.resources.timeSeconds}s (resources.time); stopped` };

    if (final?.status === 'succeeded') {
      const check = checkEntry(entryDir, fp.key, digester);
      cleanup();
      if (check.state === 'ok') {
        state.transaction(() => {
          recordUse(a, check.files, true, true);
          state.finishAttempt(attemptId, 'succeeded', { exitCode: exit.exitCode, signal: exit.signal });
        });
        counts.ran++;
        ranNow.add(inst.id);
        bus.emit({ type: 'succeeded', instance: inst.id, key: fp.key, seconds: (performance.now() - t1) / 1000 });
        if (remote?.pushes) pushes.push(pushEntry(remote, inst.id, fp.key, entryDir));
        return { status: 'succeeded' };
      }
      final = { status: 'failed', error: `the worker reported success but the store entry is ${check.state}` };
    }
    cleanup();
    if (final?.status === 'lost-lock' && !signal.aborted && lostLocks < 3) {
      // Another run took the instance over (our lock looked stale to it): wait for it and reuse its result.
      lostLocks++;
      state.finishAttempt(attemptId, 'cancelled', { error: 'the instance lock was taken over by another run' });
      return runOne(task, attempt, grant, signal);
    }
    if (signal.aborted || (final?.status === 'cancelled' && !timedOut)) {
      state.finishAttempt(attemptId, 'cancelled', { exitCode: exit.exitCode, signal: exit.signal });
      bus.emit({ type: 'cancelled', instance: inst.id });
      return { status: 'cancelled' };
    }
    const error =
      final?.error ??
      (final?.status === 'lost-lock'
        ? 'the instance lock was taken over by another run'
        : exit.signal
          ? `the worker was killed by ${exit.signal} before reporting a result`
          : `the worker exited with code ${exit.exitCode} before reporting a result`);
    state.finishAttempt(attemptId, 'failed', { error, exitCode: exit.exitCode, signal: exit.signal });
    return { status: 'failed', error };
  };

  /** Downloads `key` into the store; false when the remote lacks it or its copy is damaged (then the stage runs here). */
  async function pullEntry(r: RemoteStore, key: CacheKey, entryDir: string, attempt: number, signal: AbortSignal): Promise<boolean> {
    const tmp = join(lay.tmpDir, `${tmpName(key, attempt)}.pull`);
    try {
      if (!(await r.pull(key, tmp, digester, signal))) return false;
      await adoptEntry(tmp, entryDir);
      return true;
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      if (!signal.aborted)
        bus.emit({ type: 'warning', message: `remote cache: ${e instanceof Error ? e.message : String(e)}; running the stage here instead` });
      return false;
    }
  }
  function pushEntry(r: RemoteStore, instance: string, key: CacheKey, entryDir: string): Promise<void> {
    return r.push(key, entryDir, digester).then(
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

  const final = await scheduler
    .run(tasks, {
      run: runOne,
      onRetry: (t, attempt, error) => bus.emit({ type: 'retried', instance: t.id, attempt, error }),
      onSkip: (t, because) => bus.emit({ type: 'skipped', instance: t.id, because }),
      onFail: (t, error) => {
        const l = lastLog.get(t.id);
        bus.emit({ type: 'failed', instance: t.id, key: keyOf(t.id), error, logPath: l?.logPath, attempt: l?.attempt ?? 0 });
      },
    })
    .finally(async () => {
      opts.signal?.removeEventListener('abort', onAbort);
      (slurmExecutor as { close?: () => void } | undefined)?.close?.();
      (executor as { close?: () => void } | undefined)?.close?.();
      await Promise.all(pushes);
      remote?.close();
    });
  for (const s of final.values()) {
    if (s === 'failed') counts.failed++;
    else if (s === 'skipped') counts.skipped++;
  }
  const cancelled = opts.signal?.aborted === true;
  counts.cancelled = [...final.values()].filter((s) => s === 'cancelled').length;
  const exitCode = cancelled ? EXIT.interrupted : counts.failed > 0 ? EXIT.failed : EXIT.ok;
  state.finishRun(runId, cancelled ? 'cancelled' : counts.failed ? 'failed' : 'succeeded', counts);
  if (exitCode === EXIT.ok && digest && !only && !digester.racy) {
    // Everything is cached now: remember what that depended on, for the fast path.
    const lines: string[] = [];
    for (const [p, sig] of digester.observed) lines.push(`${p}\t${sig}`);
    const env: Record<string, string | null> = {};
    let complete = true;
    for (const a of analysis.items) {
      Object.assign(env, a.fp.parts.env);
      const files = entryFiles.get(a.fp.key);
      if (!files) {
        complete = false;
        break;
      }
      for (const f of files) lines.push(`${a.fp.key}/${f.path}\t${fileSignature(f.size, f.mtimeNs, f.ino, f.ctimeNs)}`);
    }
    const instances = plan.instances.map((i) => `${i.id}\t${i.stage}\t${keyOf(i.id)}`);
    // Tabs and newlines separate fields: a name containing one gets no snapshot (the ordinary path still works).
    const clean = (l: string, fields: number): boolean => l.split('\t').length === fields && !l.includes('\n');
    if (complete && lines.every((l) => clean(l, 2)) && instances.every((l) => clean(l, 3))) {
      writeSnapshot(lay, digest, {
        format: 4,
        plan: digest,
        storeDir: lay.storeDir,
        storeFormat: STORE_FORMAT,
        instances: instances.join('\n'),
        env,
        stats: lines.join('\n'),
        links: [...links],
        runId,
      });
    }
  }
  const summary = { exitCode, ...counts, seconds: seconds() };
  bus.emit({ type: 'summary', ...summary, dryRun: false });
  return summary;
}
