// A job Slurm stops at its time limit is a failed attempt whose reason is
// Slurm's state (TIMEOUT), and obeys retries. Slurm's limit is whole minutes
// and its time-limit check runs about every 30 s, so this test takes 60-95 s;
// it is alone in its file so that it runs beside the other Slurm tests.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, ensureSlurm, jobcompNames, project, run, slurmAvailable, slurmRows } from './helpers.js';

describe.skipIf(!slurmAvailable)('slurm executor: time limit', () => {
  beforeAll(() => ensureSlurm());
  afterEach(() => cleanup());

  it('a job past its time limit fails with TIMEOUT as the reason', async () => {
    const dir = project(`smke 1
stage slow = exec {
  argv = ["sleep", "600"]
  resources { time = 1m }
}
`);
    const r = await run(dir);
    expect(r.code).toBe(1);
    const failed = r.events.find((e) => e.type === 'failed');
    expect(String(failed?.error)).toMatch(/Slurm job \d+ ended TIMEOUT/);
    expect((await slurmRows(dir)).map((x) => x.state)).toEqual(['TIMEOUT']);
    expect(Object.fromEntries(jobcompNames(dir))).toEqual({ 'smke-slow': 1 });
    expect(readdirSync(join(dir, '.smke/store')).filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual([]);
  }, 180_000);
});
