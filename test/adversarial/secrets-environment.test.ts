// Secrets, class 3: smke's whole environment leaking into stages that did
// not ask for it (the worker, exec programs, Slurm batch jobs).
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { passedEnvNames } from '../../src/runtime/passenv.js';
import { registry } from '../../src/stages/registry.js';
import { passedToEveryStage, stageEnv } from '../../src/runtime/secrets.js';
import { SlurmExecutor, wrapperScript } from '../../src/runtime/executors/slurm.js';
import { makePlan } from '../runtime/helpers.js';
import { project, type Project } from './secrets-project.js';

let p: Project;
beforeEach(() => {
  p = project('smke-adv-env-');
});
afterEach(() => p.cleanup());

const LEAKY = {
  HF_TOKEN: 'hf_leak_0123456789',
  AWS_SECRET_ACCESS_KEY: 'aws_leak_0123456789',
  GITHUB_TOKEN: 'gh_leak_0123456789',
  WANDB_API_KEY: 'wandb_leak_0123456789',
  RANDOM_SETTING: 'random_0123456789',
};
const KEPT = {
  LANG: 'C.UTF-8',
  CUDA_CACHE_PATH: '/tmp/cc',
  SLURM_CONF: '/etc/slurm/x.conf',
  SMKE_MIRROR: 'https://m',
  OMP_NUM_THREADS: '2',
  https_proxy: 'http://proxy:3128',
};

describe("what a stage process sees of smke's environment", { timeout: 240_000 }, () => {
  it('an exec program gets the allow-list, its declared names and its own env, nothing else', () => {
    p.write(
      'p.smke',
      `smke 1
stage dump = exec {
  argv = ["sh", "-c", "env | cut -d= -f1 | sort > {out}/names.txt; printf %s \\"$WANDB_API_KEY\\" > {out}/w.txt"]
  secret_env = ["WANDB_API_KEY"]
  env = { MODE = "x" }
  outputs = ["names.txt"]
}
`,
    );
    const r = p.smke(['run', 'p.smke', '--progress', 'plain'], { ...LEAKY, ...KEPT });
    expect(r.code, r.err).toBe(0);
    const names = readFileSync(join(p.dir, 'results/dump/names.txt'), 'utf8').split('\n').filter(Boolean);
    for (const n of ['HF_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'GITHUB_TOKEN', 'RANDOM_SETTING']) expect(names, n).not.toContain(n);
    for (const n of [...Object.keys(KEPT), 'PATH', 'MODE', 'SMKE_OUT', 'WANDB_API_KEY']) expect(names, n).toContain(n);
    expect(readFileSync(join(p.dir, 'results/dump/w.txt'), 'utf8')).toBe(LEAKY.WANDB_API_KEY);
  });

  it('the allow-list admits no credential-shaped name', () => {
    for (const n of Object.keys(LEAKY)) expect(passedToEveryStage(n), n).toBe(false);
    for (const n of [
      'AWS_ACCESS_KEY_ID',
      'OPENAI_API_KEY',
      'HUGGING_FACE_HUB_TOKEN',
      'NPM_TOKEN',
      'SSH_AUTH_SOCK',
      'GOOGLE_APPLICATION_CREDENTIALS',
      'DATABASE_URL',
    ]) {
      expect(passedToEveryStage(n), n).toBe(false);
    }
    for (const n of ['PATH', 'HOME', 'TMPDIR', 'LC_ALL', 'CUDA_VISIBLE_DEVICES', 'SLURM_JOB_ID']) expect(passedToEveryStage(n), n).toBe(true);
    expect(stageEnv({ ...LEAKY, PATH: '/bin' }, ['HF_TOKEN', 'NOT_SET'])).toEqual({ PATH: '/bin', HF_TOKEN: LEAKY.HF_TOKEN });
  });

  it('kinds that read a credential declare it and still get it; others do not', () => {
    const plan = makePlan(p.dir, [
      { id: 'imagenet', kind: 'dataset.imagenet', params: { splits: ['val'] } },
      { id: 'download', kind: 'download', params: { url: 'https://example.org/x' }, env: ['SMKE_MIRROR'] },
      { id: 'ex', params: { argv: ['true'], secret_env: ['A_TOKEN'] } },
      { id: 'plain', params: { argv: ['true'] } },
    ]);
    const [imagenet, download, ex, plain] = plan.instances;
    const passed = (inst: (typeof plan.instances)[number]): string[] => passedEnvNames(inst, registry().get(inst.kind));
    expect(passed(imagenet!)).toEqual(expect.arrayContaining(['HF_TOKEN', 'HF_ENDPOINT']));
    expect(passed(download!)).toEqual(['SMKE_MIRROR']);
    expect(passed(ex!)).toEqual(['A_TOKEN']);
    expect(passed(plain!)).toEqual([]);
  });
});

describe('Slurm jobs', { timeout: 240_000 }, () => {
  it('the batch script holds no environment value but CUDA_VISIBLE_DEVICES handling', () => {
    const s = wrapperScript(['smke', 'worker', 'x.job.json'], { CUDA_VISIBLE_DEVICES: '0' }, '/tmp/s.exit', 0);
    for (const v of Object.values(LEAKY)) expect(s).not.toContain(v);
  });

  it('sbatch (which exports its own environment to the job) gets only the allow-list and the declared names', async () => {
    // A fake sbatch on PATH records the environment it was given and accepts the job.
    const bin = join(p.dir, 'bin');
    mkdirSync(bin);
    const dump = join(p.dir, 'sbatch-env.txt');
    writeFileSync(join(bin, 'sbatch'), `#!/bin/sh\nenv > ${dump}\necho 4242\n`);
    chmodSync(join(bin, 'sbatch'), 0o755);
    const saved = { ...process.env };
    Object.assign(process.env, LEAKY, { PATH: `${bin}:${process.env.PATH}` });
    const ex = new SlurmExecutor({ projectDir: p.dir, config: {} as never });
    try {
      await ex.submit(
        {
          name: 'a',
          command: ['true'],
          cwd: p.dir,
          env: {},
          passEnv: ['HF_TOKEN'],
          resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
          logPath: join(p.dir, 'a.log'),
          eventsPath: join(p.dir, 'a.events'),
        },
        () => {},
      );
    } finally {
      (ex as unknown as { close?: () => void }).close?.();
      for (const k of Object.keys(LEAKY)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    const seen = readFileSync(dump, 'utf8');
    expect(seen).toContain(`HF_TOKEN=${LEAKY.HF_TOKEN}`);
    for (const k of ['AWS_SECRET_ACCESS_KEY', 'GITHUB_TOKEN', 'WANDB_API_KEY', 'RANDOM_SETTING']) expect(seen).not.toContain(`${k}=`);
    expect(seen).toMatch(/^PATH=/m);
  });
});
