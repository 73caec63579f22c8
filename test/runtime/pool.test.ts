// The local executor's pool of long-lived workers (exec stages run in it):
// jobs share worker processes, yet each keeps its own log, a crashed worker
// fails only its own job, and a killed orchestrator's pooled job is still
// published (the same guarantee as a fresh worker, test/runtime/crash.test.ts).
// Uses bin/smke.js, so dist/ must be built (npx tsc -p tsconfig.json).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { Digester } from '../../src/runtime/digest.js';
import { StateDb } from '../../src/runtime/state.js';
import { checkEntry, listEntries } from '../../src/runtime/store.js';
import { capture, exec, makePlan, tempProject } from './helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-pool-');
});
afterEach(() => proj.cleanup());

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('pooled workers', () => {
  it('run many jobs per process, each with its own log, and exit after the run', async () => {
    const specs = Array.from({ length: 8 }, (_, i) => ({
      id: `s${i}`,
      // $PPID of the shell is the process that started it: the worker, or the worker's program starter.
      params: exec(`echo $PPID > {out}/pid; echo out-s${i}; echo err-s${i} >&2`, { outputs: ['pid'] }),
    }));
    const c = capture();
    const r = await runPlan({ plan: makePlan(proj.dir, specs), bus: c.bus, jobs: 2 });
    expect(r).toMatchObject({ exitCode: 0, ran: 8 });
    const pids = new Set(specs.map((s) => readFileSync(join(proj.dir, 'results', s.id, 'pid'), 'utf8').trim()));
    expect(pids.size).toBeLessThanOrEqual(2);
    for (const e of c.of('started')) {
      const log = readFileSync(e.logPath, 'utf8');
      expect(log).toContain(`out-${e.instance}\n`);
      expect(log).toContain(`err-${e.instance}\n`);
      expect(log.match(/out-s\d/g)).toEqual([`out-${e.instance}`]);
      // Nothing of the worker's own (its program starter) was taken for a stage's stray.
      expect(log).not.toContain('killed pid');
    }
    // The store entry keeps the log of its own job only.
    expect(readFileSync(join(proj.dir, 'results/s3/_smke/log'), 'utf8')).toMatch(/^out-s3\nerr-s3\n$/);
    // Closed with the run: no worker is left behind.
    await until('the pooled workers to exit', () => [...pids].every((p) => !alive(Number(p))), 10_000);
  });

  it('a worker killed in the middle of a job fails that job only; its retry runs on a fresh worker', async () => {
    const marker = join(proj.dir, 'first');
    const c = capture();
    const done = runPlan({
      plan: makePlan(proj.dir, [
        // The first attempt reports its worker's process group (field 5 of its stat; the worker leads it) and
        // hangs; the retry finishes.
        {
          id: 'victim',
          retries: 1,
          params: exec(`if [ ! -e ${marker} ]; then cut -d' ' -f5 /proc/$$/stat > ${marker}; sleep 60; fi; echo ok > {out}/x`, { outputs: ['x'] }),
        },
        { id: 'other', params: exec('sleep 0.5; echo fine > {out}/y', { outputs: ['y'] }) },
      ]),
      bus: c.bus,
      jobs: 2,
    });
    await until('the first attempt to start', () => existsSync(marker) && readFileSync(marker, 'utf8').endsWith('\n'));
    const pid = Number(readFileSync(marker, 'utf8'));
    process.kill(-pid, 'SIGKILL'); // the worker's whole group, as the OOM killer or a user might
    const r = await done;
    expect(r).toMatchObject({ exitCode: 0, ran: 2, failed: 0 });
    expect(c.of('retried')).toHaveLength(1);
    expect(c.of('retried')[0]!.error).toMatch(/killed by SIGKILL/);
    expect(readFileSync(join(proj.dir, 'results/victim/x'), 'utf8')).toBe('ok\n');
    expect(readFileSync(join(proj.dir, 'results/other/y'), 'utf8')).toBe('fine\n');
    const db = new StateDb(join(proj.dir, '.smke/state.db'));
    expect(
      db
        .attemptsOfRun(1)
        .filter((a) => a.instance === 'victim')
        .map((a) => a.status),
    ).toEqual(['failed', 'succeeded']);
    db.close();
  });

  it('a cancelled job (time limit) takes its worker down; the next job gets a new one', async () => {
    const c = capture();
    const r = await runPlan({
      plan: makePlan(proj.dir, [
        // Generous: under load a worker takes a while to start.
        { id: 'slow', resources: { timeSeconds: 4 }, params: exec('echo $PPID > slow.pid; sleep 60', { outputs: ['p'] }) },
        { id: 'next', params: exec('echo $PPID > {out}/p', { outputs: ['p'] }) },
      ]),
      bus: c.bus,
      jobs: 1,
      keepGoing: true,
      cancelGraceMs: 500,
    });
    expect(r).toMatchObject({ exitCode: 1, failed: 1, ran: 1 });
    expect(c.of('failed')[0]!.error).toMatch(/timed out after 4s/);
    const slowWorker = Number(readFileSync(join(proj.dir, 'slow.pid'), 'utf8'));
    expect(Number(readFileSync(join(proj.dir, 'results/next/p'), 'utf8'))).not.toBe(slowWorker);
    await until('the cancelled worker to exit', () => !alive(slowWorker), 10_000);
  });
});

/** Pooled workers started in `dir` that are still running (zombies do not count). */
function workersIn(dir: string): number[] {
  return readdirSync('/proc')
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return (
          !/\) [ZX] /.test(stat) &&
          readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker\0--serve') &&
          realpathSync(`/proc/${pid}/cwd`) === realpathSync(dir)
        );
      } catch {
        return false; // gone, or not a process
      }
    });
}

describe('the prestarted worker', () => {
  it('takes the first job; unneeded (everything cached), it is killed at once, not waited for', async () => {
    const plan = (): ReturnType<typeof makePlan> =>
      makePlan(proj.dir, [{ id: 'a', params: exec('cut -d" " -f5 /proc/$$/stat > {out}/group', { outputs: ['group'] }) }]);
    expect(await runPlan({ plan: plan(), bus: capture().bus, jobs: 1 })).toMatchObject({ exitCode: 0, ran: 1 });
    // Started before the plan was analysed, so with no run directory yet: its own output goes to logs/.
    expect(readFileSync(join(proj.dir, '.smke/logs/workers.log'), 'utf8')).toBe('');
    const group = Number(readFileSync(join(proj.dir, 'results/a/group'), 'utf8'));
    await until('the run’s worker to exit', () => !alive(group), 10_000);

    // A plan made by hand has no digest, so this run has no fast path: it prestarts a worker, then finds nothing to run.
    expect(await runPlan({ plan: plan(), bus: capture().bus, jobs: 1 })).toMatchObject({ exitCode: 0, ran: 0, cached: 1 });
    // Killed with its process group when the run closed its executor: gone (or a zombie) already.
    expect(workersIn(proj.dir)).toEqual([]);
  });
});

describe('SIGKILL of the orchestrator with a pooled job in flight', () => {
  it('the pooled worker finishes, publishes, and exits; the rerun reuses its result', async () => {
    const dir = proj.dir;
    writeFileSync(
      join(dir, 'p.smke'),
      `smke 1
stage slow = exec {
  argv = "echo $PPID > worker.pid; sleep 1; echo ran >> ran.log; echo done > {out}/x"
  shell = true
  outputs = ["x"]
}
`,
    );
    const child = spawn(process.execPath, [bin, 'run', 'p.smke', '--progress', 'plain'], { cwd: dir, stdio: 'ignore' });
    const exited = new Promise((res) => child.on('exit', res));
    await until('the job to start', () => existsSync(join(dir, 'worker.pid')) && readFileSync(join(dir, 'worker.pid'), 'utf8').endsWith('\n'), 60_000);
    const worker = Number(readFileSync(join(dir, 'worker.pid'), 'utf8'));
    child.kill('SIGKILL');
    await exited;
    // The worker outlives its orchestrator, publishes, then sees its stdin close and exits.
    await until('the worker to exit', () => !alive(worker));
    const store = join(dir, '.smke/store');
    const keys = listEntries(store);
    expect(keys).toHaveLength(1);
    expect(checkEntry(join(store, keys[0]!), keys[0]!, await Digester.create()).state).toBe('ok');
    expect(readdirSync(join(dir, '.smke/locks'))).toEqual([]);
    const rerun = spawnSync(process.execPath, [bin, 'run', 'p.smke', '--progress', 'plain'], { cwd: dir, encoding: 'utf8' });
    expect(rerun.status, rerun.stdout + rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/0 ran, 1 cached/);
    expect(readFileSync(join(dir, 'ran.log'), 'utf8')).toBe('ran\n');
    expect(readFileSync(join(dir, 'results/slow/x'), 'utf8')).toBe('done\n');
  }, 120_000);
});
