// Exec pipelines through the real Slurm: outputs, logs in the store entry,
// GPUs assigned by Slurm, a stage choosing `executor = "slurm"` in a local run,
// and a failing job with retries.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, ensureSlurm, jobcompNames, project, run, slurmAvailable, slurmRows } from './helpers.js';

describe.skipIf(!slurmAvailable)('slurm executor: pipelines', () => {
  beforeAll(() => ensureSlurm());
  afterEach(() => cleanup());

  it('runs a pipeline of exec stages as Slurm jobs, each submitted once, logs in the store', async () => {
    const dir = project(`smke 1
stage make = exec {
  argv = ["sh", "-c", "echo made-on-slurm; echo hello > {out}/a.txt"]
  outputs = { text = "a.txt" }
}
stage up = exec {
  argv = ["sh", "-c", "tr a-z A-Z < \\"$1\\" > {out}/b.txt; echo job=$SLURM_JOB_ID", "up", make.text]
  outputs = ["b.txt"]
}
stage side = exec {
  argv = ["sh", "-c", "echo side > {out}/c.txt"]
  outputs = ["c.txt"]
}
`);
    const r = await run(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'results/up/b.txt'), 'utf8')).toBe('HELLO\n');
    expect(readFileSync(join(dir, 'results/side/c.txt'), 'utf8')).toBe('side\n');
    // The job's output (Slurm's --output) is the entry's log.
    expect(readFileSync(join(dir, 'results/make/_smke/log'), 'utf8')).toContain('made-on-slurm');
    expect(readFileSync(join(dir, 'results/up/_smke/log'), 'utf8')).toMatch(/job=\d+/);
    const rows = await slurmRows(dir);
    expect(rows.map((x) => x.instance).sort()).toEqual(['make', 'side', 'up']);
    expect(rows.every((x) => x.state === 'COMPLETED')).toBe(true);
    const names = jobcompNames(dir);
    expect(Object.fromEntries(names)).toEqual({ 'smke-make': 1, 'smke-up': 1, 'smke-side': 1 });
    // Nothing of the executor's bookkeeping is left behind.
    expect(readdirSync(join(dir, '.smke/slurm'))).toEqual([]);
    // A second run is all cached: no job.
    const again = await run(dir);
    expect(again.code).toBe(0);
    expect(again.events.filter((e) => e.type === 'started')).toHaveLength(0);
    expect(await slurmRows(dir)).toHaveLength(3);
  });

  it('lets Slurm assign the GPUs: two 1-GPU stages get different CUDA_VISIBLE_DEVICES', async () => {
    const stage = (n: string): string => `stage ${n} = exec {
  argv = ["sh", "-c", "echo \\\${CUDA_VISIBLE_DEVICES:-none} > {out}/cvd.txt; sleep 2 # ${n}"]
  outputs = ["cvd.txt"]
  resources { gpus = 1 }
}
`;
    const dir = project(`smke 1\n${stage('g1')}${stage('g2')}`);
    const r = await run(dir, ['--executor', 'slurm', '--gpus', '0']);
    expect(r.code, r.stderr).toBe(0);
    const a = readFileSync(join(dir, 'results/g1/cvd.txt'), 'utf8').trim();
    const b = readFileSync(join(dir, 'results/g2/cvd.txt'), 'utf8').trim();
    expect([a, b].sort()).toEqual(['0', '1']);
  });

  it('runs only the stages that say executor = "slurm" on Slurm in a local run', async () => {
    const dir = project(`smke 1
stage here = exec {
  argv = ["sh", "-c", "echo \\\${SLURM_JOB_ID:-local} > {out}/w.txt"]
  outputs = ["w.txt"]
}
stage there = exec {
  argv = ["sh", "-c", "echo \\\${SLURM_JOB_ID:-local} > {out}/w.txt # on slurm"]
  outputs = ["w.txt"]
  executor = "slurm"
}
`);
    const r = await run(dir, []);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'results/here/w.txt'), 'utf8').trim()).toBe('local');
    expect(readFileSync(join(dir, 'results/there/w.txt'), 'utf8').trim()).toMatch(/^\d+$/);
    expect(Object.fromEntries(jobcompNames(dir))).toEqual({ 'smke-there': 1 });
  });

  it('reports a failing job with its exit code and obeys retries', async () => {
    const dir = project(`smke 1
stage bad = exec {
  argv = ["sh", "-c", "echo about-to-fail; exit 3"]
  retries = 1
}
`);
    const r = await run(dir);
    expect(r.code).toBe(1);
    const failed = r.events.find((e) => e.type === 'failed');
    expect(String(failed?.error)).toMatch(/3/);
    expect(r.events.filter((e) => e.type === 'retried')).toHaveLength(1);
    expect(Object.fromEntries(jobcompNames(dir))).toEqual({ 'smke-bad': 2 });
    const rows = await slurmRows(dir);
    expect(rows.map((x) => x.state)).toEqual(['EXIT 1', 'EXIT 1']);
    expect(readdirSync(join(dir, '.smke/store')).filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual([]);
  });

  it('polls Slurm with one batched squeue per round for all jobs in flight, with backoff', async () => {
    const dir = project('smke 1\n' + Array.from({ length: 6 }, (_, i) => `stage s${i} = exec { argv = ["sh", "-c", "sleep 4 # ${i}"] }\n`).join(''));
    const log = join(dir, 'calls.log');
    const r = await run(dir, ['--executor', 'slurm'], { SMKE_SLURM_CALLS_LOG: log });
    expect(r.code, r.stderr).toBe(0);
    const calls = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    expect(calls.filter(([, c]) => c === 'sbatch')).toHaveLength(6);
    const squeues = calls.filter(([, c]) => c === 'squeue');
    // ~5 s of waiting with backoff from 0.2 s: a handful of rounds, each asking for every job at once.
    expect(squeues.length).toBeGreaterThan(0);
    expect(squeues.length).toBeLessThanOrEqual(10);
    expect(Math.max(...squeues.map(([, , n]) => Number(n)))).toBe(6);
  });
});
