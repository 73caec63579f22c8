// The attempt's phases alone: classify (pure), acquireLock (real lock files,
// a hand-driven clock), submitAndWait (the fake executor), and how failures
// read back from the state database, old rows included.
import { rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, classify, submitAndWait, type Ended } from '../../src/runtime/attempt.js';
import { describeFailure, failureOfRow, type AttemptFailure } from '../../src/runtime/attempt-failure.js';
import { parseCacheKey } from '../../src/runtime/cache-key.js';
import type { JobRequest } from '../../src/runtime/executors/executor.js';
import { readLock, release, tryAcquire } from '../../src/runtime/locks.js';
import { StateDb } from '../../src/runtime/state.js';
import type { EntryCheck } from '../../src/runtime/store.js';
import { FakeExecutor, ManualClock } from './fake-executor.js';
import { capture, tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject();
});
afterEach(() => proj.cleanup());

type Started = Extract<Ended, { started: true }>;
const ok: EntryCheck = { state: 'ok', files: [], verified: true };
const missing: EntryCheck = { state: 'missing' };
/** A key for attempt rows, whose value no test reads. */
const KEY = parseCacheKey('e'.repeat(64), 'test');
const ended = (e: Partial<Started>): Started => ({ started: true, exit: { exitCode: 0, signal: null }, timedOut: false, ...e });
const opts = (o: Partial<Parameters<typeof classify>[1]> = {}): Parameters<typeof classify>[1] => ({
  aborted: false,
  timeLimitS: 0,
  mayRetryLostLock: true,
  entry: () => ok,
  ...o,
});

describe('classify', () => {
  it('counts a reported success only when the entry is intact', () => {
    expect(classify(ended({ final: { type: 'final', status: 'succeeded' } }), opts())).toEqual({ status: 'succeeded', files: [] });
    expect(classify(ended({ final: { type: 'final', status: 'succeeded' } }), opts({ entry: () => missing }))).toEqual({
      status: 'failed',
      failure: { kind: 'bad-entry', state: 'missing' },
    });
    const corrupt: EntryCheck = { state: 'corrupt', problem: 'x' };
    expect(classify(ended({ final: { type: 'final', status: 'succeeded' } }), opts({ entry: () => corrupt }))).toEqual({
      status: 'failed',
      failure: { kind: 'bad-entry', state: 'corrupt' },
    });
    // Success wins over a cancel that came too late; a broken entry under a cancel is a cancel.
    expect(classify(ended({ final: { type: 'final', status: 'succeeded' } }), opts({ aborted: true })).status).toBe('succeeded');
    expect(classify(ended({ final: { type: 'final', status: 'succeeded' } }), opts({ aborted: true, entry: () => missing })).status).toBe('cancelled');
  });

  it('hands the entry check the files the worker reports it published', () => {
    const files = [{ path: 'o.txt', size: 2, mtimeNs: '1', ino: '2', ctimeNs: '3', digest: 'd' }];
    const seen: unknown[] = [];
    const entry = (known?: unknown): EntryCheck => (seen.push(known), ok);
    classify(ended({ final: { type: 'final', status: 'succeeded', published: 'published', files } }), opts({ entry }));
    classify(ended({ final: { type: 'final', status: 'succeeded', published: 'exists' } }), opts({ entry }));
    expect(seen).toEqual([files, undefined]);
  });

  it('does not look at the entry unless success was reported', () => {
    const entry = (): EntryCheck => {
      throw new Error('entry checked');
    };
    expect(classify(ended({ exit: { exitCode: 2, signal: null } }), opts({ entry })).status).toBe('failed');
    expect(classify(ended({ final: { type: 'final', status: 'succeeded' }, timedOut: true }), opts({ entry, timeLimitS: 3 }))).toEqual({
      status: 'failed',
      failure: { kind: 'timeout', limitS: 3 },
    });
  });

  it('tells a crash, a kill, a stage error and data from the worker apart', () => {
    const failure = (e: Partial<Started>): AttemptFailure | undefined => {
      const c = classify(ended(e), opts());
      return c.status === 'failed' ? c.failure : undefined;
    };
    expect(failure({ exit: { exitCode: 3, signal: null } })).toEqual({ kind: 'exit', code: 3 });
    expect(failure({ exit: { exitCode: null, signal: 'SIGKILL' } })).toEqual({ kind: 'signal', signal: 'SIGKILL' });
    expect(failure({ exit: { exitCode: null, signal: null } })).toEqual({ kind: 'exit', code: null });
    expect(failure({ final: { type: 'final', status: 'failed', error: 'boom' }, exit: { exitCode: 1, signal: null } })).toEqual({
      kind: 'error',
      message: 'boom',
    });
    const reason: AttemptFailure = { kind: 'missing-output', outputs: ['model (model.bin)'] };
    expect(failure({ final: { type: 'final', status: 'failed', error: describeFailure(reason), reason } })).toEqual(reason);
    // A final 'failed' without words falls back to how the process ended.
    expect(failure({ final: { type: 'final', status: 'failed' }, exit: { exitCode: null, signal: 'SIGSEGV' } })).toEqual({ kind: 'signal', signal: 'SIGSEGV' });
  });

  it('a timeout is a failure, unless the run was cancelled', () => {
    const t = ended({ timedOut: true, final: { type: 'final', status: 'cancelled' }, exit: { exitCode: null, signal: 'SIGTERM' } });
    expect(classify(t, opts({ timeLimitS: 60 }))).toEqual({ status: 'failed', failure: { kind: 'timeout', limitS: 60 } });
    expect(classify(t, opts({ timeLimitS: 60, aborted: true }))).toEqual({ status: 'cancelled' });
    expect(classify(ended({ timedOut: true, final: { type: 'final', status: 'lost-lock' } }), opts({ timeLimitS: 1 })).status).toBe('failed');
  });

  it('a lost lock asks for a retry while retries are left, and fails after', () => {
    const lost = ended({ final: { type: 'final', status: 'lost-lock', error: 'x' }, exit: { exitCode: 3, signal: null } });
    expect(classify(lost, opts())).toEqual({ status: 'lost-lock' });
    expect(classify(lost, opts({ mayRetryLostLock: false }))).toEqual({ status: 'failed', failure: { kind: 'lost-lock' } });
    expect(classify(lost, opts({ aborted: true }))).toEqual({ status: 'cancelled' });
  });

  it('a worker that stopped on a signal it was not sent by us is cancelled', () => {
    expect(classify(ended({ final: { type: 'final', status: 'cancelled' }, exit: { exitCode: null, signal: 'SIGTERM' } }), opts())).toEqual({
      status: 'cancelled',
    });
    expect(classify(ended({ exit: { exitCode: null, signal: 'SIGTERM' } }), opts({ aborted: true }))).toEqual({ status: 'cancelled' });
  });
});

describe('acquireLock', () => {
  const lockOpts = (lockPath: string, clock: ManualClock, signal: AbortSignal, published = (): boolean => false) => ({
    lockPath,
    instance: 'a',
    bus: capture().bus,
    clock,
    pollMs: 200,
    signal,
    published,
  });

  it('takes a free lock at once, without sleeping', async () => {
    const p = join(proj.dir, 'k');
    const r = await acquireLock(lockOpts(p, new ManualClock(), new AbortController().signal));
    expect(r.kind).toBe('held');
    expect(readLock(p)?.token).toBe(r.kind === 'held' ? r.lock.token : '');
  });

  it('takes over a lock whose holder is gone, with a warning', async () => {
    const p = join(proj.dir, 'k');
    // Above Linux's largest pid_max (2^22): no process can have it.
    writeFileSync(p, JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), start: 0, token: 'old', instance: 'a' }));
    const o = lockOpts(p, new ManualClock(), new AbortController().signal);
    const c = capture();
    const r = await acquireLock({ ...o, bus: c.bus });
    expect(r.kind).toBe('held');
    expect(c.of('warning')[0]?.message).toMatch(/took over the stale lock of a \(pid 4194305 on .* is gone\)/);
    expect(c.of('waiting')).toEqual([]);
  });

  it('waits for a live holder, polling on the clock; takes the lock when it is freed without a result', async () => {
    const p = join(proj.dir, 'k');
    const other = tryAcquire(p);
    if (!other.ok) throw new Error('setup');
    const clock = new ManualClock();
    const c = capture();
    const got = acquireLock({ ...lockOpts(p, clock, new AbortController().signal), bus: c.bus });
    await clock.asleep();
    expect(c.of('waiting')).toEqual([{ type: 'waiting', instance: 'a', holder: `pid ${process.pid} on ${hostname()}` }]);
    // Still held: another poll, and only one 'waiting' event.
    expect(clock.wakeAll()).toBe(1);
    await clock.asleep();
    expect(c.of('waiting')).toHaveLength(1);
    release(p, other.info.token);
    clock.wakeAll();
    expect((await got).kind).toBe('held');
  });

  it('answers published when the holder released the lock with the entry in the store', async () => {
    const p = join(proj.dir, 'k');
    const other = tryAcquire(p);
    if (!other.ok) throw new Error('setup');
    const clock = new ManualClock();
    let inStore = false;
    const got = acquireLock(lockOpts(p, clock, new AbortController().signal, () => inStore));
    await clock.asleep();
    // Published but the lock still held: keep waiting.
    inStore = true;
    clock.wakeAll();
    await clock.asleep();
    release(p, other.info.token);
    clock.wakeAll();
    expect(await got).toEqual({ kind: 'published' });
  });

  it('a cancel ends the wait at once and leaves the holder alone', async () => {
    const p = join(proj.dir, 'k');
    const other = tryAcquire(p);
    if (!other.ok) throw new Error('setup');
    const clock = new ManualClock();
    const ac = new AbortController();
    const got = acquireLock(lockOpts(p, clock, ac.signal));
    await clock.asleep();
    ac.abort();
    expect(await got).toEqual({ kind: 'cancelled' });
    expect(readLock(p)?.token).toBe(other.info.token);
    // Already aborted: no attempt at the lock at all.
    rmSync(p);
    expect(await acquireLock(lockOpts(p, clock, ac.signal))).toEqual({ kind: 'cancelled' });
    expect(readLock(p)).toBeUndefined();
  });
});

describe('submitAndWait', () => {
  const request: JobRequest = {
    name: 'a',
    command: ['true'],
    cwd: '/',
    env: {},
    resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
    logPath: '/dev/null',
    eventsPath: '/dev/null',
    pooled: { instance: 'a' } as never,
  };

  it('passes worker events on, keeps the final one, and reports how the job ended', async () => {
    const fake = new FakeExecutor();
    const seen: string[] = [];
    const done = submitAndWait({
      executor: fake,
      request,
      onEvent: (e) => seen.push(e.type),
      signal: new AbortController().signal,
      timeLimitS: 0,
      clock: new ManualClock(),
    });
    const job = await fake.job('a');
    job.emit({ type: 'progress', done: 1, total: 2 });
    job.fail('boom');
    expect(await done).toEqual({
      started: true,
      final: { type: 'final', status: 'failed', error: 'boom' },
      exit: { exitCode: 1, signal: null },
      timedOut: false,
    });
    expect(seen).toEqual(['progress']);
  });

  it('stops a job past its time limit and says so; a job that ends in time leaves no timer', async () => {
    const fake = new FakeExecutor();
    const clock = new ManualClock();
    const done = submitAndWait({ executor: fake, request, onEvent: () => undefined, signal: new AbortController().signal, timeLimitS: 2, graceMs: 7, clock });
    const job = await fake.job('a');
    await clock.armed();
    clock.advance(1999);
    expect(job.running).toBe(true);
    clock.advance(1);
    expect(job.cancels).toEqual([7]);
    expect((await done) as Started).toMatchObject({ timedOut: true, final: { status: 'cancelled' } });

    const again = submitAndWait({ executor: fake, request, onEvent: () => undefined, signal: new AbortController().signal, timeLimitS: 2, clock });
    (await fake.job('a', 1)).exitWith(0);
    expect(((await again) as Started).timedOut).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('cancels on abort with the grace period, and reports a refused start', async () => {
    const fake = new FakeExecutor();
    const ac = new AbortController();
    const done = submitAndWait({
      executor: fake,
      request,
      onEvent: () => undefined,
      signal: ac.signal,
      timeLimitS: 0,
      graceMs: 1234,
      clock: new ManualClock(),
    });
    const job = await fake.job('a');
    job.honourCancel = false;
    ac.abort();
    expect(job.cancels).toEqual([1234]);
    job.killedBy('SIGKILL'); // the grace ran out
    expect(await done).toMatchObject({ started: true, exit: { exitCode: null, signal: 'SIGKILL' }, timedOut: false });

    fake.refuseNext = 'sbatch: invalid partition';
    expect(await submitAndWait({ executor: fake, request, onEvent: () => undefined, signal: ac.signal, timeLimitS: 0, clock: new ManualClock() })).toEqual({
      started: false,
      message: 'sbatch: invalid partition',
    });
  });
});

describe('attempt failures in the state database', () => {
  it('are kept as data and as text; rows from before the column read as their text', () => {
    const path = join(proj.dir, 'state.db');
    let db = new StateDb(path);
    const runId = db.startRun('p.smke', 'mini', []);
    const start = (instance: string): number => db.startAttempt({ runId, instance, stage: instance, key: KEY, attempt: 1, reason: 'never run', logPath: '' });
    const timeout: AttemptFailure = { kind: 'timeout', limitS: 9 };
    db.finishAttempt(start('new'), 'failed', { failure: timeout, exitCode: null, signal: 'SIGTERM' });
    // A row as an older smke wrote it: text only.
    db.db.prepare(`UPDATE attempts SET error = ?, failure = NULL WHERE id = ?`).run('the worker exited with code 3 before reporting a result', start('old'));
    db.finishAttempt(start('ok'), 'succeeded', { exitCode: 0 });
    // Back to the schema before the column (an older smke's database), then open it again: migrated, old rows kept.
    db.db.exec('ALTER TABLE attempts DROP COLUMN failure; ALTER TABLE entries DROP COLUMN unsynced_boot');
    db.db.pragma('user_version = 5');
    db.close();
    db = new StateDb(path);
    try {
      const rows = db.attemptsOfRun(runId);
      expect(rows.map((r) => [r.instance, failureOfRow(r)])).toEqual([
        ['new', { kind: 'error', message: describeFailure(timeout) }],
        ['old', { kind: 'error', message: 'the worker exited with code 3 before reporting a result' }],
        ['ok', undefined],
      ]);
      db.finishAttempt(start('again'), 'failed', { failure: timeout });
      const again = db.lastAttempt('again')!;
      expect(failureOfRow(again)).toEqual(timeout);
      expect(again.error).toBe('timed out after 9s (resources.time); stopped');
    } finally {
      db.close();
    }
  });

  it('reads a failure it does not know (a newer smke) or cannot parse as its text', () => {
    expect(failureOfRow({ failure: '{"kind":"quantum"}', error: 'decohered' })).toEqual({ kind: 'error', message: 'decohered' });
    expect(failureOfRow({ failure: '{not json', error: 'x' })).toEqual({ kind: 'error', message: 'x' });
    expect(failureOfRow({ failure: JSON.stringify({ kind: 'signal', signal: 'SIGKILL' }), error: 'y' })).toEqual({ kind: 'signal', signal: 'SIGKILL' });
  });

  it('marks the attempts of a killed orchestrator as such', () => {
    const db = new StateDb(join(proj.dir, 'state.db'));
    try {
      const runId = db.startRun('p.smke', 'mini', []);
      db.startAttempt({ runId, instance: 'a', stage: 'a', key: KEY, attempt: 1, reason: '', logPath: '' });
      db.db.prepare('UPDATE runs SET pid = ? WHERE id = ?').run(2 ** 22 + 1, runId);
      db.reapDeadRuns();
      const row = db.lastAttempt('a')!;
      expect(row.status).toBe('killed');
      expect(failureOfRow(row)).toEqual({ kind: 'orchestrator-killed' });
      expect(row.error).toBe('the orchestrator was killed');
    } finally {
      db.close();
    }
  });
});
