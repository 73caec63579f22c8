// A fake executor and a hand-driven clock for running the orchestrator
// in-process: no worker process, no sleeps, no wall clock. Modelled on
// ninja's FakeCommandRunner: each submitted job waits until the test says how
// it ends (succeeds and publishes, fails, exits, is killed, loses its lock),
// and the clock moves only when the test moves it (lock polls, time limits).

import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { AttemptFailure } from '../../src/runtime/attempt-failure.js';
import type { Clock } from '../../src/runtime/attempt.js';
import { Digester } from '../../src/runtime/digest.js';
import type { EventBus, RunEvent, WorkerEvent } from '../../src/runtime/events.js';
import type { Executor, JobExit, JobHandle, JobRequest } from '../../src/runtime/executors/executor.js';
import { readJob, type JobSpec } from '../../src/runtime/job.js';
import { publish } from '../../src/runtime/store.js';
import { smkeVersion } from '../../src/runtime/version.js';

/** A promise with its resolver, for "resolve when the run gets there". */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

let digester: Promise<Digester> | undefined;

/**
 * Publish `key` into the store as a worker would: files under a tmp dir, a
 * manifest, one rename. Also what "another run" does in lock-race tests.
 */
export async function publishEntry(
  spec: Pick<JobSpec, 'key' | 'instance' | 'stage' | 'tmpDir' | 'entryDir'> & Partial<JobSpec>,
  files: Record<string, string> = {},
): Promise<void> {
  mkdirSync(spec.tmpDir, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(spec.tmpDir, rel)), { recursive: true });
    writeFileSync(join(spec.tmpDir, rel), text);
  }
  const now = new Date().toISOString();
  await publish({
    tmpDir: spec.tmpDir,
    entryDir: spec.entryDir,
    digester: await (digester ??= Digester.create()),
    manifest: {
      format: 1,
      key: spec.key,
      instance: spec.instance,
      stage: spec.stage,
      kind: spec.kind ?? 'exec',
      kindVersion: spec.kindVersion ?? 1,
      params: spec.symbolic ?? {},
      fingerprint: spec.fingerprint ?? ({} as JobSpec['fingerprint']),
      upstream: spec.upstream ?? {},
      metrics: {},
      timings: { started: now, finished: now, seconds: 0 },
      attempt: spec.attempt ?? 1,
      smkeVersion: smkeVersion(),
      host: hostname(),
    },
  });
}

/** One submitted job; it ends only when the test ends it. */
export class FakeJob {
  readonly spec: JobSpec;
  readonly instance: string;
  /** The grace periods of each cancel request (SIGTERM now, SIGKILL after grace). */
  readonly cancels: (number | undefined)[] = [];
  /** When false, a cancel is recorded but the job goes on until the test ends it (a worker ignoring SIGTERM). */
  honourCancel = true;
  private ended = false;
  private readonly exit = deferred<JobExit>();

  constructor(
    readonly request: JobRequest,
    private readonly onEvent: (e: WorkerEvent) => void,
    private readonly onEnd: () => void,
  ) {
    // A pooled job travels in the request; any other in the job file the orchestrator wrote.
    this.spec = request.pooled ?? readJob(request.command[request.command.length - 1]!);
    this.instance = request.name;
  }

  get done(): Promise<JobExit> {
    return this.exit.promise;
  }

  get running(): boolean {
    return !this.ended;
  }

  /** The worker's progress, metrics and log lines. */
  emit(e: Exclude<WorkerEvent, { type: 'final' }>): void {
    this.onEvent(e);
  }

  /** Publishes the entry (with `files`), reports success, exits 0. */
  async succeed(files: Record<string, string> = {}): Promise<void> {
    await publishEntry(this.spec, files);
    this.end({ type: 'final', status: 'succeeded', published: 'published' }, { exitCode: 0, signal: null });
  }

  /** Reports success but publishes nothing. */
  succeedWithoutEntry(): void {
    this.end({ type: 'final', status: 'succeeded', published: 'published' }, { exitCode: 0, signal: null });
  }

  /** The stage failed: the worker reports it in words (and as data, when it knows more). */
  fail(error: string, reason?: AttemptFailure): void {
    this.end({ type: 'final', status: 'failed', error, ...(reason && { reason }) }, { exitCode: 1, signal: null });
  }

  /** The worker exited without a result (a crash). */
  exitWith(code: number): void {
    this.end(undefined, { exitCode: code, signal: null });
  }

  /** Killed from outside (OOM killer, kill -9) before reporting. */
  killedBy(signal: string): void {
    this.end(undefined, { exitCode: null, signal });
  }

  /** Another run took the instance's lock over before the worker adopted it. */
  loseLock(): void {
    this.end({ type: 'final', status: 'lost-lock', error: 'the instance lock was taken over by another run' }, { exitCode: 3, signal: null });
  }

  /** The worker stopped on a signal and said so (what a cancel ends in). */
  reportCancelled(): void {
    this.end({ type: 'final', status: 'cancelled' }, { exitCode: null, signal: 'SIGTERM' });
  }

  cancel(graceMs: number | undefined): void {
    this.cancels.push(graceMs);
    if (this.honourCancel && !this.ended) this.reportCancelled();
  }

  private end(final: WorkerEvent | undefined, exit: JobExit): void {
    if (this.ended) throw new Error(`${this.instance}: the fake job has ended already`);
    this.ended = true;
    if (final) this.onEvent(final);
    this.onEnd();
    this.exit.resolve(exit);
  }
}

/** An Executor whose jobs the test ends by hand. */
export class FakeExecutor implements Executor {
  readonly jobs: FakeJob[] = [];
  /** Most jobs running at once so far. */
  maxRunning = 0;
  running = 0;
  /** When set, the next submit throws this (the executor could not start the job). */
  refuseNext?: string;
  closed = false;
  private readonly handles = new Map<string, FakeJob>();
  /** `instance` undefined: any instance's job. */
  private readonly waiters: { instance: string | undefined; index: number; resolve: (j: FakeJob) => void }[] = [];

  constructor(readonly name = 'local') {}

  submit(request: JobRequest, onEvent: (e: WorkerEvent) => void): Promise<JobHandle> {
    if (this.refuseNext !== undefined) {
      const why = this.refuseNext;
      this.refuseNext = undefined;
      return Promise.reject(new Error(why));
    }
    const job = new FakeJob(request, onEvent, () => this.running--);
    this.jobs.push(job);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const id = `fake-${this.jobs.length}`;
    this.handles.set(id, job);
    for (const w of [...this.waiters]) {
      const list = w.instance === undefined ? this.jobs : this.of(w.instance);
      if (list.length > w.index) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(list[w.index]!);
      }
    }
    return Promise.resolve({ id });
  }

  wait(handle: JobHandle): Promise<JobExit> {
    return this.handles.get(handle.id)!.done;
  }

  cancel(handle: JobHandle, graceMs?: number): Promise<void> {
    this.handles.get(handle.id)!.cancel(graceMs);
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }

  /** The jobs of one instance, in submission order. */
  of(instance: string): FakeJob[] {
    return this.jobs.filter((j) => j.instance === instance);
  }

  /** The `n`-th job submitted (0: the first), once it is. */
  submitted(n: number): Promise<FakeJob> {
    const have = this.jobs[n];
    if (have) return Promise.resolve(have);
    const d = deferred<FakeJob>();
    this.waiters.push({ instance: undefined, index: n, resolve: d.resolve });
    return d.promise;
  }

  /** The `index`-th job of `instance` (0: the first), once it is submitted. */
  job(instance: string, index = 0): Promise<FakeJob> {
    const have = this.of(instance)[index];
    if (have) return Promise.resolve(have);
    const d = deferred<FakeJob>();
    this.waiters.push({ instance, index, resolve: d.resolve });
    return d.promise;
  }
}

/** A clock that moves only when the test says so. */
export class ManualClock implements Clock {
  private now = 0;
  private readonly timers: { at: number; fn: () => void; live: boolean }[] = [];
  private sleepers: (() => void)[] = [];
  private sleepWaiters: (() => void)[] = [];
  private timerWaiters: (() => void)[] = [];

  sleep(_ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const wake = (): void => {
        signal.removeEventListener('abort', wake);
        this.sleepers = this.sleepers.filter((s) => s !== wake);
        resolve();
      };
      signal.addEventListener('abort', wake, { once: true });
      this.sleepers.push(wake);
      for (const w of this.sleepWaiters.splice(0)) w();
    });
  }

  /** Resolves once some caller is asleep (e.g. waiting for a lock). */
  asleep(): Promise<void> {
    if (this.sleepers.length) return Promise.resolve();
    return new Promise((r) => this.sleepWaiters.push(r));
  }

  /** Ends every sleep now: each lock waiter polls once. */
  wakeAll(): number {
    const n = this.sleepers.length;
    for (const s of [...this.sleepers]) s();
    return n;
  }

  after(ms: number, fn: () => void): () => void {
    const t = { at: this.now + ms, fn, live: true };
    this.timers.push(t);
    for (const w of this.timerWaiters.splice(0)) w();
    return () => (t.live = false);
  }

  /** Resolves once a timer is pending (e.g. a job's time limit is armed). */
  armed(): Promise<void> {
    if (this.pendingTimers) return Promise.resolve();
    return new Promise((r) => this.timerWaiters.push(r));
  }

  /** Timers set and not yet cleared or fired. */
  get pendingTimers(): number {
    return this.timers.filter((t) => t.live).length;
  }

  /** Moves time on by `ms`, firing what falls due. */
  advance(ms: number): void {
    this.now += ms;
    for (const t of this.timers) {
      if (t.live && t.at <= this.now) {
        t.live = false;
        t.fn();
      }
    }
  }
}

/** Resolves with the first event (from now on) that matches. */
export function nextEvent<T extends RunEvent['type']>(bus: EventBus, type: T, instance?: string): Promise<Extract<RunEvent, { type: T }>> {
  return new Promise((resolve) => {
    let done = false;
    bus.on((e) => {
      if (done || e.type !== type || (instance !== undefined && (e as { instance?: string }).instance !== instance)) return;
      done = true;
      resolve(e as Extract<RunEvent, { type: T }>);
    });
  });
}
