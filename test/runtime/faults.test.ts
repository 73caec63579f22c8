// Faults with real worker processes: retries, keep-going, cancellation,
// GPUs, corrupted entries, stale locks, missing outputs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { formatLock, lockPresent } from '../../src/runtime/locks.js';
import { StateDb } from '../../src/runtime/state.js';
import { listEntries } from '../../src/runtime/store.js';
import { capture, exec, makePlan, ref, tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject();
});
afterEach(() => proj.cleanup());
const store = () => join(proj.dir, '.smke/store');

describe('runtime faults', () => {
  it('retries with the attempt number visible to the stage, and records every attempt', async () => {
    const plan = makePlan(proj.dir, [
      { id: 'flaky', retries: 2, params: exec('echo "attempt $SMKE_ATTEMPT"; test "$SMKE_ATTEMPT" -ge 2 && echo ok > {out}/r') },
    ]);
    const c = capture();
    const r = await runPlan({ plan, bus: c.bus });
    expect(r).toMatchObject({ exitCode: 0, ran: 1 });
    expect(c.of('retried').map((e) => e.attempt)).toEqual([1]);
    expect(c.of('started').map((e) => e.attempt)).toEqual([1, 2]);
    const db = new StateDb(join(proj.dir, '.smke/state.db'));
    const rows = db.attemptsOfRun(1);
    db.close();
    expect(rows.map((a) => [a.attempt, a.status, a.exit_code])).toEqual([
      [1, 'failed', 1],
      [2, 'succeeded', 0],
    ]);
    expect(readFileSync(rows[0]!.log_path!, 'utf8')).toContain('attempt 1');
  });

  it('keeps going with -k: independent branches finish, dependants of the failure are skipped', async () => {
    const specs = [
      { id: 'bad', params: exec('exit 4') },
      { id: 'bad_child', params: exec(['true', ref('bad')]) },
      { id: 'good', params: exec('echo g > {out}/g') },
      { id: 'good_child', params: exec(['cp', ref('good', 'g'), '{out}/g2'], { outputs: ['g2'] }) },
    ];
    const c = capture();
    const r = await runPlan({
      plan: makePlan(
        proj.dir,
        specs.map((s) => ({ ...s, params: s.id === 'good' ? exec('echo g > {out}/g', { outputs: ['g'] }) : s.params })),
      ),
      bus: c.bus,
      keepGoing: true,
      jobs: 1,
    });
    expect(r).toMatchObject({ exitCode: 1, ran: 2, failed: 1, skipped: 1 });
    expect(c.of('skipped').map((e) => e.instance)).toEqual(['bad_child']);
    expect(listEntries(store())).toHaveLength(2);
  });

  it('fails a stage whose declared output is missing, and publishes nothing', async () => {
    const c = capture();
    const r = await runPlan({ plan: makePlan(proj.dir, [{ id: 'a', params: exec('echo > {out}/other', { outputs: ['wanted.txt'] }) }]), bus: c.bus });
    expect(r.exitCode).toBe(1);
    expect(c.of('failed')[0]!.error).toContain('wanted.txt');
    expect(listEntries(store())).toEqual([]);
    expect(readdirSync(join(proj.dir, '.smke/tmp'))).toEqual([]);
  });

  it('cancels: signals the whole process group, records cancelled, exits 130, stores nothing', async () => {
    const marker = join(proj.dir, 'grandchild.pid');
    const plan = makePlan(proj.dir, [
      { id: 'slow', params: exec(`sleep 600 & echo $! > ${marker}; wait`) },
      { id: 'next', params: exec(['true', ref('slow')]) },
    ]);
    const c = capture();
    const controller = new AbortController();
    // Cancel once the stage's program has started its own child (the machine may be slow).
    const poll = setInterval(() => {
      if (existsSync(marker)) {
        clearInterval(poll);
        controller.abort();
      }
    }, 20);
    // A run that waited for the program (600 s) fails on the test's timeout: no wall-clock bound.
    const r = await runPlan({ plan, bus: c.bus, signal: controller.signal, cancelGraceMs: 2000 });
    clearInterval(poll);
    expect(r.exitCode).toBe(130);
    expect(c.of('cancelled').map((e) => e.instance)).toEqual(['slow']);
    expect(listEntries(store())).toEqual([]);
    const pid = Number(readFileSync(marker, 'utf8'));
    await new Promise((res) => setTimeout(res, 200));
    // The grandchild died with its group (a zombie at most, where nothing reaps orphans).
    const state = (() => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
      } catch {
        return 'gone';
      }
    })();
    expect(['gone', 'Z', 'X']).toContain(state);
    const db = new StateDb(join(proj.dir, '.smke/state.db'));
    expect(db.attemptsOfRun(1).map((a) => a.status)).toEqual(['cancelled']);
    expect(db.runs(1)[0]!.status).toBe('cancelled');
    db.close();
  });

  it('gives GPU stages their device index in CUDA_VISIBLE_DEVICES and never overlaps them on a 1-GPU pool', async () => {
    const stage = (id: string) => ({
      id,
      resources: { gpus: 1 },
      params: exec(`echo "$CUDA_VISIBLE_DEVICES $(date +%s%N)" > {out}/t; : ${id}; sleep 0.3; date +%s%N >> {out}/t`, { outputs: ['t'] }),
    });
    const c = capture();
    const r = await runPlan({ plan: makePlan(proj.dir, [stage('g1'), stage('g2')]), bus: c.bus, gpus: 1, jobs: 2 });
    expect(r).toMatchObject({ exitCode: 0, ran: 2 });
    const spans = ['g1', 'g2'].map((s) => {
      const [first, end] = readFileSync(join(proj.dir, 'results', s, 't'), 'utf8')
        .trim()
        .split('\n');
      const [dev, start] = first!.split(' ');
      return { dev, start: BigInt(start!), end: BigInt(end!) };
    });
    expect(spans.map((s) => s.dev)).toEqual(['0', '0']);
    const [a, b] = spans as [(typeof spans)[0], (typeof spans)[0]];
    expect(a.end <= b.start || b.end <= a.start).toBe(true);
  });

  it('does not rerun when only resources or retries change', async () => {
    const mk = (cpus: number, retries: number) =>
      makePlan(proj.dir, [{ id: 'a', resources: { cpus, memBytes: 1 << 20 }, retries, params: exec('echo > {out}/x') }]);
    await runPlan({ plan: mk(1, 0), bus: capture().bus });
    const r = await runPlan({ plan: mk(2, 3), bus: capture().bus });
    expect(r).toMatchObject({ ran: 0, cached: 1 });
  });

  it('detects a corrupted entry, never uses it, and reruns it', async () => {
    const plan = () => makePlan(proj.dir, [{ id: 'a', params: exec('echo good > {out}/x', { outputs: ['x'] }) }]);
    await runPlan({ plan: plan(), bus: capture().bus });
    const [key] = listEntries(store());
    writeFileSync(join(store(), key!, 'x'), 'evil\n'); // a different size and mtime: the stat check notices
    const c = capture();
    const r = await runPlan({ plan: plan(), bus: c.bus });
    expect(r).toMatchObject({ ran: 1, cached: 0 });
    expect(c.of('planned')[0]!.reasons[0]).toMatch(/^store entry corrupted: output x does not match its digest/);
    expect(c.of('warning')[0]!.message).toContain('corrupted');
    expect(readFileSync(join(proj.dir, 'results/a/x'), 'utf8')).toBe('good\n');
    rmSync(join(store(), key!, '_smke/manifest.json'));
    const c2 = capture();
    expect(await runPlan({ plan: plan(), bus: c2.bus })).toMatchObject({ ran: 1 });
    expect(c2.of('planned')[0]!.reasons[0]).toMatch(/manifest.json is missing/);
  });

  it('takes over a stale lock with a warning', async () => {
    const plan = () => makePlan(proj.dir, [{ id: 'a', params: exec('echo > {out}/x') }]);
    const c0 = capture();
    await runPlan({ plan: plan(), bus: c0.bus, dryRun: true });
    const key = c0.of('planned')[0]!.key;
    const dead = Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
    writeFileSync(join(proj.dir, '.smke/locks', key), JSON.stringify({ pid: dead, host: hostname(), start: 0, token: 'old', instance: 'a' }));
    const c = capture();
    const r = await runPlan({ plan: plan(), bus: c.bus });
    expect(r).toMatchObject({ exitCode: 0, ran: 1 });
    expect(c.of('warning').map((w) => w.message)).toEqual([expect.stringMatching(new RegExp(`took over the stale lock of a \\(pid ${dead} on .* is gone\\)`))]);
    expect(lockPresent(join(proj.dir, '.smke/locks', key))).toBe(false);
  });

  it('--only runs a stage with what it needs; --force reruns a cached one', async () => {
    const plan = () =>
      makePlan(proj.dir, [
        { id: 'up', params: exec('echo > {out}/u') },
        { id: 'mid', params: exec(['true', ref('up')]) },
        { id: 'other', params: exec('true') },
      ]);
    const c = capture();
    expect(await runPlan({ plan: plan(), bus: c.bus, only: ['mid'] })).toMatchObject({ ran: 2 });
    expect(
      c
        .of('started')
        .map((e) => e.instance)
        .sort(),
    ).toEqual(['mid', 'up']);
    const c2 = capture();
    expect(await runPlan({ plan: plan(), bus: c2.bus, force: ['up'] })).toMatchObject({ ran: 2, cached: 1 });
    // mid's key waits for up's new output; the same bytes cut it off (test/runtime/cutoff.test.ts).
    expect(c2.of('planned').map((e) => [e.instance, e.reasons])).toEqual([
      ['up', ['forced']],
      ['mid', ['upstream up reruns (cut off if its output is unchanged)']],
      ['other', ['never run']],
    ]);
    expect(c2.of('cached').map((e) => [e.instance, e.cutoff])).toEqual([['mid', 'upstream up reran, output unchanged: cut off']]);
    await expect(runPlan({ plan: plan(), bus: capture().bus, only: ['nope'] })).rejects.toThrow(/no stage or instance named 'nope'/);
  });
});

describe('runtime limits, exec options and shared stores', () => {
  it('stops a stage past its time limit and fails it', async () => {
    const c = capture();
    // A limit that did not stop the program (600 s) fails on the test's timeout: no wall-clock bound.
    const r = await runPlan({
      plan: makePlan(proj.dir, [{ id: 'slow', resources: { timeSeconds: 1 }, params: exec('sleep 600') }]),
      bus: c.bus,
      cancelGraceMs: 1000,
    });
    expect(r).toMatchObject({ exitCode: 1, failed: 1 });
    expect(c.of('failed')[0]!.error).toBe('timed out after 1s (resources.time); stopped');
  });

  it('exec: argv without a shell, env, cwd, and {out} in env', async () => {
    mkdirSync(join(proj.dir, 'sub'));
    const plan = makePlan(proj.dir, [
      {
        id: 'e',
        params: exec(['sh', '-c', 'pwd > "$OUT_FILE"; echo "$GREETING" >> "$OUT_FILE"; printf "%s|" "$@" >> "$OUT_FILE"', 'x', 'two words', '$HOME'], {
          env: { GREETING: 'hi there', OUT_FILE: '{out}/o.txt' },
          cwd: 'sub',
          outputs: ['o.txt'],
        }),
      },
    ]);
    expect(await runPlan({ plan, bus: capture().bus })).toMatchObject({ exitCode: 0 });
    const [dir, greeting, args] = readFileSync(join(proj.dir, 'results/e/o.txt'), 'utf8').split('\n');
    expect(dir!.endsWith('/sub')).toBe(true);
    expect(greeting).toBe('hi there');
    expect(args).toBe('two words|$HOME|');
  });

  it("shares one store between two projects: the second reuses the first one's entry", async () => {
    const shared = join(proj.dir, 'shared-store');
    const other = tempProject();
    try {
      const plan = (dir: string) => makePlan(dir, [{ id: 'x', params: exec('echo same > {out}/f', { outputs: ['f'] }) }]);
      mkdirSync(join(proj.dir, 'p1'));
      expect(await runPlan({ plan: plan(join(proj.dir, 'p1')), bus: capture().bus, store: shared })).toMatchObject({ ran: 1 });
      expect(await runPlan({ plan: plan(other.dir), bus: capture().bus, store: shared })).toMatchObject({ ran: 0, cached: 1 });
      expect(readFileSync(join(other.dir, 'results/x/f'), 'utf8')).toBe('same\n');
      expect(listEntries(shared)).toHaveLength(1);
    } finally {
      other.cleanup();
    }
  });
});

describe('a worker that finds its lock taken over', () => {
  it('does no work; its run waits for the other holder and then runs or reuses', async () => {
    const { LocalExecutor } = await import('../../src/runtime/executors/local.js');
    const real = new LocalExecutor();
    let tampered = false;
    // An executor (the interface is injectable) that lets another "run" take the lock just before the worker starts.
    const executor: typeof real = Object.assign(Object.create(real) as typeof real, {
      async submit(job: Parameters<typeof real.submit>[0], onEvent: Parameters<typeof real.submit>[1]) {
        if (!tampered) {
          tampered = true;
          // A pooled job travels over the pool's pipe; a fresh worker's in its job file.
          const spec = job.pooled ?? (JSON.parse(readFileSync(job.command[3]!, 'utf8')) as { lock: { path: string } });
          rmSync(spec.lock.path);
          symlinkSync(formatLock({ pid: process.pid, host: hostname(), token: 'other-run' }), spec.lock.path);
          const handle = await real.submit(job, onEvent);
          // Once our worker has given up, the other run finishes (without a result) a little later.
          void real.wait(handle).then(() => setTimeout(() => rmSync(spec.lock.path, { force: true }), 300));
          return handle;
        }
        return real.submit(job, onEvent);
      },
    });
    const c = capture();
    const r = await runPlan({
      plan: makePlan(proj.dir, [{ id: 'a', params: exec('echo once >> count; echo > {out}/x') }]),
      bus: c.bus,
      executor,
      lockPollMs: 50,
    });
    expect(r).toMatchObject({ exitCode: 0, ran: 1 });
    expect(c.of('waiting')).toHaveLength(1);
    expect(readFileSync(join(proj.dir, 'count'), 'utf8')).toBe('once\n'); // the first worker did nothing
    const db = new StateDb(join(proj.dir, '.smke/state.db'));
    expect(db.attemptsOfRun(1).map((x) => [x.status, x.error])).toEqual([
      ['cancelled', 'the instance lock was taken over by another run'],
      ['succeeded', null],
    ]);
    db.close();
  });
});
