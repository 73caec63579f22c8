// The job file: everything a worker needs, written by the orchestrator as
// JSON so the worker shares no memory with it (and may run on another node).

import { readFileSync } from 'node:fs';
import type { Resources, Value } from '../compiler/plan.js';
import { SetupError } from './errors.js';
import { isCacheKey, type CacheKey } from './cache-key.js';
import type { FingerprintParts } from './fingerprint.js';

export interface JobSpec {
  format: 1;
  key: CacheKey;
  instance: string;
  stage: string;
  kind: string;
  kindVersion: number;
  /** Params with OutputRefs still in place; the worker substitutes `refPaths`. */
  params: Record<string, Value>;
  /** `${instance}\u0000${output}` -> absolute path of that upstream output in the store. */
  refPaths: Record<string, string>;
  symbolic: Record<string, Value>;
  fingerprint: FingerprintParts;
  upstream: Record<string, CacheKey>;
  projectDir: string;
  /** In-flight output directory (the stage's outDir). */
  tmpDir: string;
  entryDir: string;
  scratchDir: string;
  logPath: string;
  eventsPath: string;
  lock: { path: string; token: string };
  attempt: number;
  seed: number;
  resources: Resources & { gpuIds: number[] };
  backend?: string;
  smkeVersion: string;
  /** Publish without syncing first; the orchestrator syncs the store when its run ends (./durability.ts). Only for pooled local workers. */
  deferSync?: boolean;
}

export function refKey(instance: string, output: string): string {
  return `${instance}\u0000${output}`;
}

/** A deterministic 31-bit seed from the key: reruns of one instance draw the same numbers. */
export function seedFromKey(key: CacheKey): number {
  return parseInt(key.slice(0, 8), 16) & 0x7fffffff;
}

/**
 * The job file an executor hands the worker. Written by the orchestrator and
 * removed when the job ends: a missing or damaged one (deleted or cut short
 * meanwhile) is a clear failure of the attempt, never a stack.
 */
export function readJob(path: string): JobSpec {
  let job: Partial<JobSpec> | null;
  try {
    job = JSON.parse(readFileSync(path, 'utf8')) as Partial<JobSpec> | null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SetupError(
      `cannot read the job file ${path} (${code ?? 'not valid JSON'}): it is written by \`smke run\` for one attempt and removed when the attempt ends; run the pipeline again`,
    );
  }
  if (!job || typeof job !== 'object' || job.format !== 1 || !isCacheKey(job.key) || typeof job.tmpDir !== 'string' || !job.lock) {
    throw new SetupError(`the job file ${path} is not one this smke wrote (format ${String(job?.format)}): run the pipeline again`);
  }
  return job as JobSpec;
}
