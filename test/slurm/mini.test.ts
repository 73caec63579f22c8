// The mini profile's data stage and one training stage (pipelines/full.smke)
// through Slurm give the same keys and byte-identical outputs as the local
// run, and the store they fill is the local run's cache.
import { cpSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, ensureSlurm, jobcompNames, REPO, run, slurmAvailable } from './helpers.js';

const ARGS = ['--only', 'image_encoder', '--set', 'image_encoder_steps=5'];

function projectWithFull(): string {
  const dir = mkdtempSync(join(tmpdir(), 'smke-slurm-mini-'));
  cpSync(join(REPO, 'pipelines/full.smke'), join(dir, 'p.smke'));
  return dir;
}

function outputs(store: string): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const k of readdirSync(store).filter((n) => /^[0-9a-f]{64}$/.test(n))) {
    const m = JSON.parse(readFileSync(join(store, k, '_smke/manifest.json'), 'utf8')) as { stage: string; outputs: unknown };
    o[`${m.stage} ${k}`] = m.outputs;
  }
  return o;
}

describe.skipIf(!slurmAvailable)('slurm executor: the mini pipeline', () => {
  beforeAll(() => ensureSlurm());
  afterEach(() => cleanup());

  it('data.synthetic and a training stage on Slurm match the local run (keys, outputs, shared cache)', async () => {
    const local = projectWithFull();
    const slurm = projectWithFull();
    const [l, s] = await Promise.all([
      run(local, ARGS, { SMKE_STORE: join(local, 'store') }),
      run(slurm, ['--executor', 'slurm', ...ARGS], { SMKE_STORE: join(slurm, 'store') }),
    ]);
    expect(l.code, l.stderr).toBe(0);
    expect(s.code, s.stderr).toBe(0);
    const keys = (r: typeof l): string[] =>
      r.events
        .filter((e) => e.type === 'succeeded')
        .map((e) => `${String(e.instance)} ${String(e.key)}`)
        .sort();
    expect(keys(s)).toEqual(keys(l));
    expect(keys(s)).toHaveLength(2);
    // Progress and metrics stream from the job's events file.
    expect(s.events.some((e) => e.type === 'progress' && e.instance === 'image_encoder')).toBe(true);
    expect(outputs(join(slurm, 'store'))).toEqual(outputs(join(local, 'store')));
    expect(Object.fromEntries(jobcompNames(slurm))).toEqual({ 'smke-coco': 1, 'smke-image_encoder': 1 });
    // The local project using the store Slurm filled finds everything cached.
    const again = await run(local, ARGS, { SMKE_STORE: join(slurm, 'store') });
    expect(again.code).toBe(0);
    expect(again.events.filter((e) => e.type === 'started')).toHaveLength(0);
    expect(again.events.filter((e) => e.type === 'cached')).toHaveLength(2);
  }, 180_000);
});
