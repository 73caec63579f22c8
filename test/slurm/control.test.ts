// Ctrl-C cancels the run's Slurm jobs; an orchestrator killed with SIGKILL and
// started again re-attaches to its jobs instead of submitting them twice.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureSlurm, jobcompNames, project, run, slurmAvailable, slurmRows, squeue, start, until } from './helpers.js';

const entries = (dir: string): string[] => {
  try { return readdirSync(join(dir, '.smke/store')).filter((n) => /^[0-9a-f]{64}$/.test(n)); } catch { return []; }
};

describe.skipIf(!slurmAvailable)('slurm executor: control', () => {
  beforeAll(() => ensureSlurm());

  it('Ctrl-C cancels the running and pending jobs (scancel) and leaves no store entry', async () => {
    const dir = project(`smke 1
stage a = exec { argv = ["sleep", "60"] }
stage b = exec { argv = ["sleep", "61"] }
stage c = exec { argv = ["sleep", "62"] }
`);
    const r = start(dir);
    await until(() => r.events.filter((e) => e.type === 'started').length === 3, 30_000, 'three jobs submitted');
    const jobIds = await until(async () => {
      const ids = (await slurmRows(dir).catch(() => [])).map((y) => y.job_id);
      return ids.length === 3 && [...squeue(ids).values()].includes('RUNNING') ? ids : undefined;
    }, 30_000, 'a job running');
    const t0 = Date.now();
    r.child.kill('SIGINT');
    const res = await r.done;
    expect(res.code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const st = squeue(jobIds);
    for (const id of jobIds) expect(['CANCELLED', undefined]).toContain(st.get(id));
    expect(entries(dir)).toEqual([]);
    expect(res.events.filter((e) => e.type === 'cancelled').length).toBeGreaterThan(0);
  });

  it('re-attaches after SIGKILL: no job is submitted twice and finished jobs are collected', async () => {
    // Two 1-CPU jobs run at once on the 2-CPU node; the third waits (PENDING) — then a dependent stage.
    const dir = project(`smke 1
stage a = exec { argv = ["sh", "-c", "sleep 4; echo a > {out}/o.txt"]  outputs = ["o.txt"] }
stage b = exec { argv = ["sh", "-c", "sleep 4; echo b > {out}/o.txt"]  outputs = ["o.txt"] }
stage c = exec { argv = ["sh", "-c", "sleep 1; echo c > {out}/o.txt"]  outputs = ["o.txt"] }
stage d = exec {
  argv = ["sh", "-c", "cat \\"$1\\" \\"$2\\" \\"$3\\" > {out}/o.txt", "d", a.o, b.o, c.o]
  outputs = { o = "o.txt" }
}
`.replace(/outputs = \["o.txt"\]/g, 'outputs = { o = "o.txt" }'));
    const first = start(dir);
    const rows = await until(async () => {
      const x = await slurmRows(dir).catch(() => []);
      return x.length === 3 ? x : undefined;
    }, 30_000, 'three jobs submitted');
    const before = squeue(rows.map((x) => x.job_id));
    first.child.kill('SIGKILL');
    await first.done;
    expect([...before.values()].some((s) => s === 'PENDING' || s === 'RUNNING')).toBe(true);

    const second = await run(dir);
    expect(second.code, second.stderr).toBe(0);
    expect(readFileSync(join(dir, 'results/d/o.txt'), 'utf8')).toBe('a\nb\nc\n');
    // Each stage's job appears once in Slurm's completion log, and once in the state DB.
    await until(() => [...jobcompNames(dir).values()].reduce((x, y) => x + y, 0) >= 4, 10_000, 'jobcomp lines');
    expect(Object.fromEntries(jobcompNames(dir))).toEqual({ 'smke-a': 1, 'smke-b': 1, 'smke-c': 1, 'smke-d': 1 });
    const after = await slurmRows(dir);
    expect(after.map((x) => x.instance).sort()).toEqual(['a', 'b', 'c', 'd']);
    // What the second run did with the first run's jobs: waited for running ones, adopted pending ones.
    const adopted = second.events.filter((e) => e.type === 'log' && /re-attached to Slurm job/.test(String(e.message)));
    const waited = second.events.filter((e) => e.type === 'waiting' || (e.type === 'cached' && e.reused));
    const pending = [...before.values()].filter((s) => s === 'PENDING').length;
    expect(adopted.length).toBeGreaterThanOrEqual(pending);
    console.log(`re-attach: at SIGKILL ${JSON.stringify(Object.fromEntries(before))}; adopted ${adopted.length}, waited ${waited.length}`);
    expect(adopted.length + waited.length).toBeGreaterThanOrEqual(3 - [...before.values()].filter((s) => s === 'COMPLETED').length);
  });
});
