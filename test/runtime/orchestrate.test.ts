// The orchestrator in-process with the fake executor and a hand-driven clock:
// each outcome, lock races, the lost-lock retry, cancellation, skips, -k and
// the concurrency limit. No worker process, no sleeps, no wall-clock bounds:
// the test decides when each job starts, ends and how.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Value } from '../../src/compiler/plan.js';
import { describeFailure, failureOfRow, type AttemptFailure } from '../../src/runtime/attempt-failure.js';
import { parseCacheKey } from '../../src/runtime/cache-key.js';
import { release, tryAcquire } from '../../src/runtime/locks.js';
import { runPlan, type RunOptions } from '../../src/runtime/orchestrate.js';
import { StateDb } from '../../src/runtime/state.js';
import { FakeExecutor, ManualClock, publishEntry, type FakeJob } from './fake-executor.js';
import { capture, exec, makePlan, ref, tempProject, type StageSpec } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject();
});
afterEach(() => proj.cleanup());

/** An exec stage; `n` makes each key distinct. */
function stage(id: string, more: Partial<StageSpec> = {}, upstream: string[] = []): StageSpec {
  const argv: (string | ReturnType<typeof ref>)[] = ['true', id, ...upstream.map((u) => ref(u))];
  return { id, params: exec(argv as Value as string[]), ...more };
}

function start(specs: StageSpec[], more: Partial<RunOptions> = {}) {
  const fake = new FakeExecutor();
  const clock = new ManualClock();
  const c = capture();
  const plan = makePlan(proj.dir, specs);
  const run = runPlan({ plan, bus: c.bus, executor: fake, clock, jobs: 4, ...more });
  return { fake, clock, c, run };
}

function attempts(): { instance: string; status: string; failure: AttemptFailure | undefined }[] {
  const db = new StateDb(join(proj.dir, '.smke/state.db'));
  try {
    const run = db.runs(1)[0]!;
    return db.attemptsOfRun(run.id).map((r) => ({ instance: r.instance, status: r.status, failure: failureOfRow(r) }));
  } finally {
    db.close();
  }
}

/** The keys the plan would use, from a dry run (no lock, no job). */
async function keysOf(specs: StageSpec[]): Promise<Map<string, string>> {
  const c = capture();
  await runPlan({ plan: makePlan(proj.dir, specs), bus: c.bus, dryRun: true });
  return new Map(c.of('planned').map((e) => [e.instance, e.key]));
}

describe('each way an attempt ends', () => {
  const cases: [string, (j: FakeJob) => void, AttemptFailure][] = [
    ['a crash without a result', (j) => j.exitWith(3), { kind: 'exit', code: 3 }],
    ['a kill from outside', (j) => j.killedBy('SIGKILL'), { kind: 'signal', signal: 'SIGKILL' }],
    ['an error the stage reported', (j) => j.fail('loss is NaN'), { kind: 'error', message: 'loss is NaN' }],
    [
      'declared outputs not created',
      (j) => j.fail('declared output(s) not created: m (m.bin)', { kind: 'missing-output', outputs: ['m (m.bin)'] }),
      { kind: 'missing-output', outputs: ['m (m.bin)'] },
    ],
    ['success reported with nothing in the store', (j) => j.succeedWithoutEntry(), { kind: 'bad-entry', state: 'missing' }],
  ];
  for (const [what, end, failure] of cases) {
    it(`${what}: fails with ${failure.kind}, in the event, the state row and the text`, async () => {
      const { fake, c, run } = start([stage('a')]);
      end(await fake.job('a'));
      expect(await run).toMatchObject({ exitCode: 1, failed: 1, ran: 0 });
      const failed = c.of('failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ instance: 'a', reason: failure, error: describeFailure(failure), attempt: 1 });
      expect(failed[0]!.logPath).toMatch(/a\.1\.log$/);
      expect(attempts()).toEqual([{ instance: 'a', status: 'failed', failure }]);
    });
  }

  it('a success publishes, records and links the entry', async () => {
    const { fake, c, run } = start([stage('a')]);
    await (await fake.job('a')).succeed({ 'out.txt': 'hi' });
    expect(await run).toMatchObject({ exitCode: 0, ran: 1, failed: 0 });
    expect(c.of('succeeded').map((e) => e.instance)).toEqual(['a']);
    expect(attempts()).toEqual([{ instance: 'a', status: 'succeeded', failure: undefined }]);
    expect(fake.closed).toBe(true);
  });

  it('successes that end together have their records written together; one that cannot be written fails alone, leaving none of its records', async () => {
    const { fake, c, run } = start([stage('a'), stage('b'), stage('c')]);
    const jobs = [await fake.job('a'), await fake.job('b'), await fake.job('c')];
    // The user's file lands where b's results/ link goes, after b's success and before its records.
    c.bus.on((e) => {
      if (e.type === 'succeeded' && e.instance === 'b') writeFileSync(join(proj.dir, 'results/b'), 'mine\n');
    });
    mkdirSync(join(proj.dir, 'results'), { recursive: true });
    await Promise.all(jobs.map((j) => j.succeed({ 'out.txt': j.spec.instance })));
    expect(await run).toMatchObject({ exitCode: 1, ran: 2, failed: 1 });
    expect(c.of('failed').map((e) => [e.instance, e.error])).toEqual([
      ['b', expect.stringMatching(/^recording its result failed: .*results\/b is not a link smke made/)],
    ]);
    expect(readFileSync(join(proj.dir, 'results/a/out.txt'), 'utf8')).toBe('a');
    expect(readFileSync(join(proj.dir, 'results/c/out.txt'), 'utf8')).toBe('c');
    expect(readFileSync(join(proj.dir, 'results/b'), 'utf8')).toBe('mine\n');
    const rows = attempts();
    expect(rows.filter((r) => r.instance !== 'b')).toEqual([
      { instance: 'a', status: 'succeeded', failure: undefined },
      { instance: 'c', status: 'succeeded', failure: undefined },
    ]);
    // b's entry record and the close of its row went back together; a's and c's stayed.
    expect(rows.find((r) => r.instance === 'b')?.status).toBe('running');
    const db = new StateDb(join(proj.dir, '.smke/state.db'));
    try {
      expect([...(db.runInstances(db.runs(1)[0]!.id)?.keys() ?? [])].sort()).toEqual(['a', 'c']);
      expect([...db.entries().values()].map((e) => e.instance).sort()).toEqual(['a', 'c']);
    } finally {
      db.close();
    }
  });

  it('an executor that cannot start the job: not-started, retried with its reason, then run', async () => {
    const { fake, c, run } = start([stage('a', { retries: 1 })]);
    fake.refuseNext = 'no slots';
    await (await fake.job('a')).succeed();
    expect(await run).toMatchObject({ exitCode: 0, ran: 1 });
    expect(c.of('retried')).toEqual([
      { type: 'retried', instance: 'a', attempt: 1, error: 'could not start: no slots', reason: { kind: 'not-started', message: 'no slots' } },
    ]);
    expect(attempts().map((a) => [a.status, a.failure?.kind])).toEqual([
      ['failed', 'not-started'],
      ['succeeded', undefined],
    ]);
  });

  it('past resources.time: stopped with the grace period and failed as a timeout; retried, the next attempt has its own limit', async () => {
    const { fake, clock, c, run } = start([stage('a', { resources: { timeSeconds: 5 }, retries: 1 })], { cancelGraceMs: 250 });
    const first = await fake.job('a');
    await clock.armed();
    clock.advance(4999);
    expect(first.running).toBe(true);
    clock.advance(1);
    expect(first.cancels).toEqual([250]);
    const second = await fake.job('a', 1);
    await clock.armed();
    expect(clock.pendingTimers).toBe(1);
    await second.succeed();
    expect(await run).toMatchObject({ exitCode: 0, ran: 1 });
    expect(c.of('retried')[0]).toMatchObject({ reason: { kind: 'timeout', limitS: 5 }, error: 'timed out after 5s (resources.time); stopped' });
    expect(clock.pendingTimers).toBe(0);
  });

  it('a job that ignores the time limit is failed as a timeout when it finally ends, even with a result', async () => {
    const { fake, clock, c, run } = start([stage('a', { resources: { timeSeconds: 1 } })]);
    const job = await fake.job('a');
    job.honourCancel = false;
    await clock.armed();
    clock.advance(1000);
    await job.succeed();
    expect(await run).toMatchObject({ exitCode: 1, failed: 1 });
    expect(c.of('failed')[0]?.reason).toEqual({ kind: 'timeout', limitS: 1 });
  });

  it('a worker stopped by a signal it reported itself is cancelled, not failed', async () => {
    const { fake, c, run } = start([stage('a'), stage('b', {}, ['a'])]);
    (await fake.job('a')).reportCancelled();
    expect(await run).toMatchObject({ exitCode: 0, failed: 0, cancelled: 1, skipped: 1 });
    expect(c.of('cancelled').map((e) => e.instance)).toEqual(['a']);
    expect(c.of('skipped')).toMatchObject([{ instance: 'b', because: 'a was cancelled' }]);
  });
});

/** Another run (this process, alive) holds the lock of `id`'s key; it can publish the entry and let go. */
async function lockedByAnotherRun(specs: StageSpec[], id: string) {
  // A dry run plans instances downstream of unrun ones without a key (''): only `id`'s is parsed.
  const key = parseCacheKey((await keysOf(specs)).get(id), `the planned event of ${id}`);
  const lockPath = join(proj.dir, '.smke/locks', key);
  const held = tryAcquire(lockPath);
  if (!held.ok) throw new Error('the lock was taken already');
  return {
    key,
    lockPath,
    otherRun: {
      publish: () => publishEntry({ key, instance: id, stage: id, tmpDir: join(proj.dir, '.smke/tmp/other'), entryDir: join(proj.dir, '.smke/store', key) }),
      release: () => release(lockPath, held.info.token),
    },
  };
}

describe('lock races', () => {
  it('waits for another run holding the lock, then reuses what it published', async () => {
    const specs = [stage('a')];
    const { key, otherRun } = await lockedByAnotherRun(specs, 'a');
    const { fake, clock, c, run } = start(specs);
    await clock.asleep();
    expect(c.of('waiting')).toHaveLength(1);
    await otherRun.publish();
    otherRun.release();
    clock.wakeAll();
    expect(await run).toMatchObject({ exitCode: 0, ran: 0, cached: 1 });
    expect(c.of('cached')).toEqual([{ type: 'cached', instance: 'a', key, reused: true }]);
    expect(fake.jobs).toHaveLength(0);
  });

  it('runs it itself when the other run gives the lock up without a result', async () => {
    const specs = [stage('a')];
    const { otherRun } = await lockedByAnotherRun(specs, 'a');
    const { fake, clock, run } = start(specs);
    await clock.asleep();
    clock.wakeAll();
    await clock.asleep();
    expect(fake.jobs).toHaveLength(0);
    otherRun.release();
    clock.wakeAll();
    await (await fake.job('a')).succeed();
    expect(await run).toMatchObject({ exitCode: 0, ran: 1 });
  });

  it('keeps waiting while the holder has published but still holds the lock, then reuses the entry', async () => {
    const specs = [stage('a')];
    const { otherRun } = await lockedByAnotherRun(specs, 'a');
    const { fake, clock, c, run } = start(specs);
    await clock.asleep();
    // Published, but the lock is released only after the waiter's next look.
    await otherRun.publish();
    clock.wakeAll();
    await clock.asleep();
    otherRun.release();
    clock.wakeAll();
    expect(await run).toMatchObject({ exitCode: 0, ran: 0, cached: 1 });
    expect(c.of('cached')[0]).toMatchObject({ reused: true });
    expect(fake.jobs).toHaveLength(0);
  });

  it('a cancel while waiting for the lock cancels the instance and leaves the holder its lock', async () => {
    const specs = [stage('a'), stage('b', {}, ['a'])];
    const { lockPath } = await lockedByAnotherRun(specs, 'a');
    const ac = new AbortController();
    const { fake, clock, run } = start(specs, { signal: ac.signal });
    await clock.asleep();
    ac.abort();
    expect(await run).toMatchObject({ exitCode: 130, cancelled: 1, skipped: 1 });
    expect(fake.jobs).toHaveLength(0);
    expect(tryAcquire(lockPath).ok).toBe(false);
  });
});

describe('the lost-lock retry', () => {
  it('a lost lock that is free again: the instance runs again under a new lock, the lost attempt recorded as cancelled', async () => {
    const { fake, c, run } = start([stage('a')]);
    (await fake.job('a')).loseLock();
    const second = await fake.job('a', 1);
    expect(second.spec.attempt).toBe(1);
    expect(second.spec.tmpDir).not.toBe(fake.jobs[0]!.spec.tmpDir);
    await second.succeed();
    expect(await run).toMatchObject({ exitCode: 0, ran: 1 });
    expect(c.of('retried')).toEqual([]);
    expect(attempts()).toEqual([
      { instance: 'a', status: 'cancelled', failure: { kind: 'lost-lock' } },
      { instance: 'a', status: 'succeeded', failure: undefined },
    ]);
  });

  it('taken over by another run: waits for it and reuses its result', async () => {
    const { fake, clock, c, run } = start([stage('a')]);
    const job = await fake.job('a');
    // The other run judged our lock stale and took it.
    rmSync(job.spec.lock.path);
    const other = tryAcquire(job.spec.lock.path);
    if (!other.ok) throw new Error('setup');
    job.loseLock();
    await clock.asleep();
    await publishEntry({ ...job.spec, tmpDir: join(proj.dir, '.smke/tmp/other') });
    release(job.spec.lock.path, other.info.token);
    clock.wakeAll();
    expect(await run).toMatchObject({ exitCode: 0, ran: 0, cached: 1 });
    expect(c.of('cached')[0]).toMatchObject({ instance: 'a', reused: true });
    expect(fake.jobs).toHaveLength(1);
  });

  it('gives up after three retries in one run: the fourth lost lock fails the instance', async () => {
    const { fake, c, run } = start([stage('a', { retries: 0 })]);
    for (let i = 0; i < 4; i++) (await fake.job('a', i)).loseLock();
    expect(await run).toMatchObject({ exitCode: 1, failed: 1 });
    expect(fake.jobs).toHaveLength(4);
    expect(c.of('failed')[0]).toMatchObject({ reason: { kind: 'lost-lock' }, error: 'the instance lock was taken over by another run' });
    expect(attempts().map((a) => a.status)).toEqual(['cancelled', 'cancelled', 'cancelled', 'failed']);
  });

  it('the three retries are the whole run’s, not each instance’s', async () => {
    const { fake, c, run } = start([stage('a'), stage('b', {}, ['a'])]);
    (await fake.job('a', 0)).loseLock();
    (await fake.job('a', 1)).loseLock();
    await (await fake.job('a', 2)).succeed();
    (await fake.job('b', 0)).loseLock();
    (await fake.job('b', 1)).loseLock();
    expect(await run).toMatchObject({ exitCode: 1, ran: 1, failed: 1 });
    expect(c.of('failed').map((e) => [e.instance, e.reason?.kind])).toEqual([['b', 'lost-lock']]);
  });

  it('a lost lock during a cancel is a cancel', async () => {
    const ac = new AbortController();
    const { fake, run } = start([stage('a')], { signal: ac.signal });
    const job = await fake.job('a');
    job.honourCancel = false;
    ac.abort();
    job.loseLock();
    expect(await run).toMatchObject({ exitCode: 130, cancelled: 1 });
    expect(fake.jobs).toHaveLength(1);
  });
});

describe('cancellation', () => {
  it('cancels running jobs with the grace period, never starts pending ones, skips their dependants', async () => {
    const ac = new AbortController();
    const specs = [stage('a'), stage('b'), stage('c'), stage('d', {}, ['a'])];
    const { fake, c, run } = start(specs, { jobs: 2, signal: ac.signal, cancelGraceMs: 900 });
    const [a, b] = [await fake.submitted(0), await fake.submitted(1)];
    ac.abort();
    // d depends on a, which was cancelled: skipped, as below any cancelled instance.
    expect(await run).toMatchObject({ exitCode: 130, cancelled: 3, skipped: 1, ran: 0, failed: 0 });
    expect([a.cancels, b.cancels]).toEqual([[900], [900]]);
    expect(fake.jobs).toHaveLength(2);
    expect(
      c
        .of('cancelled')
        .map((e) => e.instance)
        .sort(),
    ).toEqual([a.instance, b.instance].sort());
    expect(c.of('skipped')).toMatchObject([{ instance: 'd', because: 'a was cancelled' }]);
    expect(attempts().map((x) => x.status)).toEqual(['cancelled', 'cancelled']);
  });

  it('keeps the result of a job that finished before it could stop', async () => {
    const ac = new AbortController();
    const { fake, c, run } = start([stage('a'), stage('b')], { jobs: 2, signal: ac.signal });
    const a = await fake.job('a');
    const b = await fake.job('b');
    a.honourCancel = false;
    ac.abort();
    await a.succeed();
    expect(await run).toMatchObject({ exitCode: 130, ran: 1, cancelled: 1 });
    expect(c.of('succeeded').map((e) => e.instance)).toEqual(['a']);
    expect(b.running).toBe(false);
  });

  it('a run cancelled before it starts runs nothing', async () => {
    const ac = new AbortController();
    ac.abort();
    const { fake, run } = start([stage('a'), stage('b')], { signal: ac.signal });
    expect(await run).toMatchObject({ exitCode: 130, cancelled: 2 });
    expect(fake.jobs).toHaveLength(0);
  });
});

describe('failures and what depends on them', () => {
  it('skips every dependant of a failed instance, transitively, and runs none of them', async () => {
    const { fake, c, run } = start([stage('a'), stage('b', {}, ['a']), stage('c', {}, ['b'])]);
    (await fake.job('a')).exitWith(1);
    expect(await run).toMatchObject({ exitCode: 1, failed: 1, skipped: 2 });
    expect(c.of('skipped').map((e) => [e.instance, e.because])).toEqual([
      ['b', 'a failed'],
      ['c', 'a failed'],
    ]);
    expect(fake.jobs.map((j) => j.instance)).toEqual(['a']);
  });

  it('a dependant runs once its upstream succeeds on a retry', async () => {
    const { fake, c, run } = start([stage('a', { retries: 2 }), stage('b', {}, ['a'])]);
    (await fake.job('a', 0)).fail('flaky');
    (await fake.job('a', 1)).killedBy('SIGKILL');
    await (await fake.job('a', 2)).succeed();
    await (await fake.job('b')).succeed();
    expect(await run).toMatchObject({ exitCode: 0, ran: 2 });
    expect(c.of('retried').map((e) => [e.attempt, e.reason])).toEqual([
      [1, { kind: 'error', message: 'flaky' }],
      [2, { kind: 'signal', signal: 'SIGKILL' }],
    ]);
  });

  it('without -k nothing new starts after a failure; the running job finishes', async () => {
    const { fake, c, run } = start([stage('a'), stage('x'), stage('y')], { jobs: 2 });
    const a = await fake.job('a');
    const x = await fake.job('x');
    a.fail('boom');
    await x.succeed();
    expect(await run).toMatchObject({ exitCode: 1, failed: 1, ran: 1, skipped: 1 });
    expect(c.of('skipped')).toMatchObject([{ instance: 'y', because: expect.stringContaining('not started after a failure') as string }]);
    expect(fake.of('y')).toEqual([]);
  });

  it('with -k independent branches go on; only dependants of the failure are skipped', async () => {
    const { fake, c, run } = start([stage('a'), stage('b', {}, ['a']), stage('x'), stage('y', {}, ['x'])], { jobs: 1, keepGoing: true });
    const first = await fake.submitted(0);
    if (first.instance === 'a') first.fail('boom');
    else await first.succeed();
    for (const id of ['x', 'y']) {
      const j = await fake.job(id);
      if (j.running) await j.succeed();
    }
    if (first.instance !== 'a') (await fake.job('a')).fail('boom');
    expect(await run).toMatchObject({ exitCode: 1, failed: 1, ran: 2, skipped: 1 });
    expect(c.of('skipped').map((e) => e.instance)).toEqual(['b']);
  });
});

describe('the concurrency limit', () => {
  for (const jobs of [1, 2, 3]) {
    it(`-j ${jobs}: never more than ${jobs} jobs at once, and all of them run`, async () => {
      const ids = ['s1', 's2', 's3', 's4', 's5', 's6'];
      const { fake, run } = start(
        ids.map((id) => stage(id)),
        { jobs },
      );
      for (let done = 0; done < ids.length; done++) {
        await fake.submitted(Math.min(done + jobs, ids.length) - 1);
        expect(fake.running).toBe(Math.min(jobs, ids.length - done));
        await fake.jobs.find((j) => j.running)!.succeed();
      }
      expect(await run).toMatchObject({ exitCode: 0, ran: 6 });
      expect(fake.maxRunning).toBe(jobs);
    });
  }

  it('a 2-GPU pool runs two 1-GPU stages at once, on distinct devices, and a third after', async () => {
    const { fake, run } = start(
      ['g1', 'g2', 'g3'].map((id) => stage(id, { resources: { gpus: 1 } })),
      { jobs: 8, gpus: 2 },
    );
    const [j1, j2] = [await fake.submitted(0), await fake.submitted(1)];
    expect(fake.running).toBe(2);
    expect([j1.request.env.CUDA_VISIBLE_DEVICES, j2.request.env.CUDA_VISIBLE_DEVICES].sort()).toEqual(['0', '1']);
    expect(j1.spec.resources.gpuIds).toEqual([Number(j1.request.env.CUDA_VISIBLE_DEVICES)]);
    const freed = j2.spec.resources.gpuIds;
    await j2.succeed();
    const j3 = await fake.submitted(2);
    expect(j3.spec.resources.gpuIds).toEqual(freed);
    await j1.succeed();
    await j3.succeed();
    expect(await run).toMatchObject({ exitCode: 0, ran: 3 });
    expect(fake.maxRunning).toBe(2);
  });
});
