// The stage kind contract (docs/architecture.md, "Adding a stage kind").
// A kind's module must stay light at import time: `smke check`, `smke kinds`
// and `smke status` load every kind's descriptor, so heavy libraries (tfjs,
// sharp) are imported inside `run`, never at the top of a kind's module.

import type { KindInfo } from '../compiler/kind-catalog.js';
import type { Resources, Value } from '../compiler/plan.js';

export type { OutputSpec, KindInfo } from '../compiler/kind-catalog.js';

export interface StageLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** What a running stage sees. Built by the worker; the same locally and on Slurm. */
export interface StageContext {
  /** Instance id (`glue[cola]`) and stage name (`glue`). */
  instance: string;
  stage: string;
  /** The instance's cache key. */
  key: string;
  /** Temporary output directory: the only place the stage may write results. */
  outDir: string;
  /**
   * Scratch directory that survives failed and killed attempts of the same key
   * (for resumable work: checkpoints, partial downloads) and is removed after a
   * successful publish. Never part of the result.
   */
  scratchDir: string;
  /** Absolute paths of the upstream outputs this instance references (what a sandbox exposes). */
  upstream?: string[];
  /** Project directory: relative paths in params resolve against it. */
  projectDir: string;
  /** 1 for the first attempt, 2 for the first retry, ... */
  attempt: number;
  /** Deterministic seed for this instance. */
  seed: number;
  /** Resources granted by the scheduler; `gpuIds` are the device indexes assigned. */
  resources: Resources & { gpuIds: number[] };
  /** tfjs backend requested by the run (`--backend`), if any. */
  backend?: string;
  log: StageLogger;
  /** Report progress: `done` of `total` `unit`s (steps, bytes, images). */
  progress(done: number, total: number, unit?: string): void;
  /** Record a metric (per-step when `step` is given; final otherwise). */
  metric(name: string, value: number, step?: number): void;
  /** Aborted on Ctrl-C, cancellation or timeout: stop promptly, the attempt is discarded. */
  signal: AbortSignal;
  /**
   * Where programs the stage starts must send stdout and stderr (the stage's
   * log), in a pooled worker; absent: they inherit the worker's own, which are the log.
   */
  outputFd?: number;
}

/** One run's use of an instance, for a kind's `compare`. */
export interface ComparedRun {
  /** Run number (`smke history`), and when it started (ISO). */
  run: number;
  started: string;
  profile?: string;
  /** The instance's store entry in that run; undefined when the entry is gone (smke gc). */
  dir?: string;
  key: string;
}

/** What the runtime hands a kind's `compare`: the same instance in two runs (src/runtime/compare.ts). */
export interface RunComparison {
  instance: string;
  current: ComparedRun & { dir: string };
  /** The latest earlier run of the same pipeline that used this instance; undefined: there is none. */
  previous?: ComparedRun;
  /** One line per instance whose key differs between the two runs, with why: `glue[rte]: param lr: 0.002 -> 0.0025`. */
  changes: string[];
}

/**
 * A stage kind. Params arrive resolved: every OutputRef has been replaced by
 * the absolute path of the upstream output, and schema defaults are filled.
 */
export interface StageKind extends KindInfo {
  /**
   * Environment variables the stage reads at run time that are not part of
   * its key: credentials (HF_TOKEN), endpoints. Passed from smke's
   * environment to this stage's process only (others never see them); their
   * values are never stored or printed. Variables that change the result
   * belong in `env` instead (hashed into the key, also passed).
   */
  passEnv?(params: Record<string, Value>): string[];
  /**
   * The kind may run in a long-lived pooled worker, one job after another
   * (local executor, no GPUs): it keeps no global state between runs, writes
   * only through ctx (log, outputFd) and stops promptly on ctx.signal. Kinds
   * that hold large memory or native state (tfjs) leave this unset and get a
   * fresh process per attempt.
   */
  pooled?: boolean;
  /**
   * For kinds whose output is a page people read (a report): the page of
   * `current` beside the same instance's output in an earlier run, as one
   * self-contained HTML document. `smke run` writes it outside the store
   * (results/<instance>.compare.html), because it depends on run history,
   * which no cache key covers; import the renderer lazily, as in `run`.
   */
  compare?(c: RunComparison): Promise<string>;
  run(ctx: StageContext, params: Record<string, Value>): Promise<void>;
}
