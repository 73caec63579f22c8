// Slurm settings of a project: the `slurm` section of `smke.json` in the
// project directory, overridden by SMKE_SLURM_* environment variables (so CI
// or one shell can point the same project at another partition). None of it
// is part of any cache key: where a stage runs never changes its result.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SlurmConfig {
  partition?: string;
  account?: string;
  qos?: string;
  /** Default `--time` for stages that declare no `resources.time` (Slurm syntax, e.g. `2:00:00`). */
  time?: string;
  /** Added verbatim to every sbatch call, e.g. ["--constraint=a100", "--exclusive"]. */
  extraArgs?: string[];
  /** The jobcomp/filetxt file (JobCompLoc): how a job's end is read once squeue has forgotten it. */
  jobcomp?: string;
  /** squeue backoff: first and longest interval between two batched status queries. */
  pollMinMs?: number;
  pollMaxMs?: number;
  /** How often sentinel files and event files are looked at (local file system, no controller call). */
  tickMs?: number;
}

export const DEFAULT_JOBCOMP = '/var/lib/smke-slurm/jobcomp.log';

function str(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new Error(`smke.json: slurm.${what} must be a string`);
  return v;
}

/** Load `<projectDir>/smke.json` (optional) and apply the environment. */
export function loadSlurmConfig(projectDir: string, env: Record<string, string | undefined> = process.env): SlurmConfig {
  let raw: Record<string, unknown> = {};
  try {
    const j = JSON.parse(readFileSync(join(projectDir, 'smke.json'), 'utf8')) as { slurm?: Record<string, unknown> };
    raw = j.slurm ?? {};
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`smke.json: ${(e as Error).message}`);
  }
  const extra = raw.extraArgs ?? raw.extra_args;
  if (extra !== undefined && (!Array.isArray(extra) || extra.some((a) => typeof a !== 'string'))) {
    throw new Error('smke.json: slurm.extraArgs must be an array of strings');
  }
  const num = (v: unknown): number | undefined => (typeof v === 'number' && v > 0 ? v : undefined);
  const c: SlurmConfig = {
    partition: env.SMKE_SLURM_PARTITION || str(raw.partition, 'partition'),
    account: env.SMKE_SLURM_ACCOUNT || str(raw.account, 'account'),
    qos: env.SMKE_SLURM_QOS || str(raw.qos, 'qos'),
    time: env.SMKE_SLURM_TIME || str(raw.time, 'time'),
    extraArgs: env.SMKE_SLURM_ARGS ? env.SMKE_SLURM_ARGS.split(/\s+/).filter(Boolean) : (extra as string[] | undefined),
    jobcomp: env.SMKE_SLURM_JOBCOMP || str(raw.jobcomp, 'jobcomp') || DEFAULT_JOBCOMP,
    pollMinMs: num(Number(env.SMKE_SLURM_POLL_MIN_MS)) ?? num(raw.pollMinMs),
    pollMaxMs: num(Number(env.SMKE_SLURM_POLL_MAX_MS)) ?? num(raw.pollMaxMs),
    tickMs: num(raw.tickMs),
  };
  return c;
}

/** Seconds -> Slurm's `--time` (whole minutes, at least 1: Slurm's granularity). */
export function slurmTime(seconds: number): string {
  const m = Math.max(1, Math.ceil(seconds / 60));
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:00`;
}
