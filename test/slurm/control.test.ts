// Ctrl-C cancels the run's Slurm jobs; an orchestrator killed with SIGKILL and
// started again re-attaches to its jobs instead of submitting them twice.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, ensureSlurm, jobcompNames, project, slurmAvailable, slurmRows, squeue, start, until } from './helpers.js';

const entries = (dir: string): string[] => {
  try {
    return readdirSync(join(dir, '.smke/store')).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
};

describe.skipIf(!slurmAvailable)('slurm executor: control', () => {
  beforeAll(() => ensureSlurm());
  afterEach(() => cleanup());

  it('Ctrl-C cancels the running and pending jobs (scancel) and leaves no store entry', async () => {
    const dir = project(`smke 1
stage a = exec { argv = ["sleep", "600"] }
stage b = exec { argv = ["sleep", "601"] }
stage c = exec { argv = ["sleep", "602"] }
`);
    const r = start(dir);
    await until(() => r.events.filter((e) => e.type === 'started').length === 3, 30_000, 'three jobs submitted');
    const jobIds = await until(
      async () => {
        const ids = (await slurmRows(dir).catch(() => [])).map((y) => y.job_id);
        return ids.length === 3 && [...squeue(ids).values()].includes('RUNNING') ? ids : undefined;
      },
      30_000,
      'a job running',
    );
    r.child.kill('SIGINT');
    // No wall-clock bound: a run that waited for its jobs (600 s) fails on the test's timeout, which
    // leaves room for a loaded machine and for Slurm's own SIGKILL backstop (KillWait, 30 s).
    const res = await r.done;
    expect(res.code).toBe(130);
    const st = squeue(jobIds);
    for (const id of jobIds) expect(['CANCELLED', undefined]).toContain(st.get(id));
    expect(entries(dir)).toEqual([]);
    expect(res.events.filter((e) => e.type === 'cancelled').length).toBeGreaterThan(0);
  }, 240_000);

  it('re-attaches after SIGKILL: no job is submitted twice and finished jobs are collected', async () => {
    // Jobs are submitted held (--hold); the test releases a and b (they run), keeps c pending, kills
    // the orchestrator, starts it again, and releases c once the new run has adopted it.
    const dir = project(`smke 1
stage a = exec { argv = ["sh", "-c", "sleep 5; echo a > {out}/o.txt"]  outputs = { o = "o.txt" } }
stage b = exec { argv = ["sh", "-c", "sleep 5; echo b > {out}/o.txt"]  outputs = { o = "o.txt" } }
stage c = exec { argv = ["sh", "-c", "echo c > {out}/o.txt"]  outputs = { o = "o.txt" } }
stage d = exec {
  argv = ["sh", "-c", "cat \\"$1\\" \\"$2\\" \\"$3\\" > {out}/o.txt", "d", a.o, b.o, c.o]
  outputs = { o = "o.txt" }
}
`);
    const first = start(dir, ['--executor', 'slurm'], { SMKE_SLURM_ARGS: '--hold' });
    const rows = await until(
      async () => {
        const x = await slurmRows(dir).catch(() => []);
        return x.length === 3 ? x : undefined;
      },
      30_000,
      'three jobs submitted',
    );
    const id = (i: string): string => rows.find((r) => r.instance === i)!.job_id;
    execFileSync('scontrol', ['release', id('a'), id('b')]);
    await until(() => squeue([id('a'), id('b')]).get(id('a')) === 'RUNNING' && squeue([id('b')]).get(id('b')) === 'RUNNING', 20_000, 'a and b running');
    first.child.kill('SIGKILL');
    await first.done;
    expect(squeue([id('c')]).get(id('c'))).toBe('PENDING');
    // As if the orchestrator had died between sbatch and recording c's job id: the row keeps only
    // its provisional id, and the restart must find the job by its script instead of submitting again.
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dir, '.smke/state.db'));
    db.prepare("UPDATE slurm_jobs SET job_id = 'pending:test' WHERE job_id = ?").run(id('c'));
    db.close();

    const second = start(dir);
    await until(
      () => second.events.some((e) => e.type === 'log' && String(e.message).includes(`re-attached to Slurm job ${id('c')} (PENDING)`)),
      20_000,
      'c adopted',
    );
    execFileSync('scontrol', ['release', id('c')]);
    const r = await second.done;
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'results/d/o.txt'), 'utf8')).toBe('a\nb\nc\n');
    // a and b: the new run waited for their locks (or found them published) and reused their entries.
    expect(
      r.events
        .filter((e) => e.type === 'cached')
        .map((e) => e.instance)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(
      r.events
        .filter((e) => e.type === 'started')
        .map((e) => e.instance)
        .sort(),
    ).toEqual(['c', 'd']);
    // Each stage's job ran once: Slurm's completion log and the state DB agree.
    await until(() => [...jobcompNames(dir).values()].reduce((x, y) => x + y, 0) >= 4, 10_000, 'jobcomp lines');
    expect(Object.fromEntries(jobcompNames(dir))).toEqual({ 'smke-a': 1, 'smke-b': 1, 'smke-c': 1, 'smke-d': 1 });
    expect((await slurmRows(dir)).map((x) => x.instance).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it("a job ended by Slurm (scancel from outside) is a failed attempt with Slurm's state, and is retried", async () => {
    const dir = project(`smke 1
stage flaky = exec {
  argv = ["sh", "-c", "if [ -e first-done ]; then echo ok > {out}/x; else touch first-done; sleep 60; fi"]
  outputs = ["x"]
  retries = 1
}
`);
    const r = start(dir);
    const first = await until(
      async () => {
        const x = await slurmRows(dir).catch(() => []);
        return x.length === 1 && squeue([x[0]!.job_id]).get(x[0]!.job_id) === 'RUNNING' && existsSync(join(dir, 'first-done')) ? x[0]!.job_id : undefined;
      },
      30_000,
      'the first attempt running',
    );
    execFileSync('scancel', [first]);
    const res = await r.done;
    expect(res.code, res.stderr).toBe(0);
    const retried = res.events.find((e) => e.type === 'retried');
    expect(String(retried?.error)).toMatch(new RegExp(`Slurm job ${first} ended CANCELLED`));
    expect(readFileSync(join(dir, 'results/flaky/x'), 'utf8')).toBe('ok\n');
    expect((await slurmRows(dir)).map((x) => x.state)).toEqual(['CANCELLED', 'COMPLETED']);
  });
});
