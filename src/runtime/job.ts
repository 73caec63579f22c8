// The job file: everything a worker needs, written by the orchestrator as
// JSON so the worker shares no memory with it (and may run on another node).

import type { Resources, Value } from '../compiler/plan.js';
import type { FingerprintParts } from './fingerprint.js';

export interface JobSpec {
  format: 1;
  key: string;
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
  upstream: Record<string, string>;
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
}

export function refKey(instance: string, output: string): string {
  return `${instance}\u0000${output}`;
}

/** A deterministic 31-bit seed from the key: reruns of one instance draw the same numbers. */
export function seedFromKey(key: string): number {
  return parseInt(key.slice(0, 8), 16) & 0x7fffffff;
}
