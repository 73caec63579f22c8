// The stage kind contract (docs/architecture.md, "Adding a stage kind").
// A kind's module must stay light at import time: `smke check`, `smke kinds`
// and `smke status` load every kind's descriptor, so heavy libraries (tfjs,
// sharp) are imported inside `run`, never at the top of a kind's module.

import type { OutputSpec, KindInfo } from '../compiler/kind-catalog.js';
import type { Resources, Value } from '../compiler/plan.js';
import type { ObjectSchema, ParamsOf, Symbolic } from './param-types.js';

export type { OutputSpec, KindInfo } from '../compiler/kind-catalog.js';
export type { ObjectSchema, ParamsOf, Symbolic } from './param-types.js';

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
   * successful publish. Never part of the result. Created when first read:
   * most stages never use it, and a directory made and removed per stage is
   * the slowest file-system step of a trivial one (docs/runtime.md).
   */
  readonly scratchDir: string;
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
  /**
   * Starts a program with its stdout and stderr appended to the stage's log,
   * more cheaply than node:child_process (src/runtime/program-starter.ts);
   * offered by pooled workers where the starter is built. Absent: start
   * programs with Node, sending their output to `outputFd`.
   */
  startProgram?(spec: ProgramSpec): StartedProgram;
}

/** A program to start for a stage: stdin is /dev/null, stdout and stderr are appended to the stage's log. */
export interface ProgramSpec {
  /** Looked up in `env.PATH` when it holds no '/'. */
  file: string;
  args: string[];
  cwd: string;
  /** The program's whole environment. */
  env: Record<string, string | undefined>;
}

/** How a program ended: its exit code or the signal that killed it, or why it could not start (ENOENT, EACCES). */
export type ProgramEnd = { code: number | null; signal: NodeJS.Signals | null } | { error: Error };

export interface StartedProgram {
  readonly ended: Promise<ProgramEnd>;
  /** Signals the program if it is still running. */
  kill(signal: NodeJS.Signals): void;
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
 * A stage kind whose parameters have the type `P`. Write one with `defineKind`,
 * which computes `P` from the `params` schema (ParamsOf), so the schema and
 * the type cannot disagree. Params arrive resolved in `run`: every OutputRef
 * has been replaced by the absolute path of the upstream output, and schema
 * defaults are filled. The other methods are called by the compiler and the
 * runtime's planning, where references are still symbolic (`Symbolic<P>`).
 */
export interface StageKind<P> {
  name: string;
  /** Bump when results would change: part of the cache key. */
  version: number;
  /** One line, shown by `smke kinds`. */
  summary: string;
  /** JSON Schema (type object) of the parameters; defaults are filled in by the compiler. */
  params: ObjectSchema;
  /** Named outputs for these (resolved, defaulted) params. */
  outputs(params: Symbolic<P>): Record<string, OutputSpec>;
  /** Default resources; the pipeline may override any field. */
  resources?(params: Symbolic<P>): Partial<Resources>;
  /** Files, directories or globs whose content goes into the key (project-relative or absolute). */
  inputs?(params: Symbolic<P>): string[];
  /** Environment variable names whose values go into the key. */
  env?(params: Symbolic<P>): string[];
  /**
   * Environment variables the stage reads at run time that are not part of
   * its key: credentials (HF_TOKEN), endpoints. Passed from smke's
   * environment to this stage's process only (others never see them); their
   * values are never stored or printed. Variables that change the result
   * belong in `env` instead (hashed into the key, also passed).
   */
  passEnv?(params: Symbolic<P>): string[];
  /**
   * The kind may run in a long-lived pooled worker, one job after another
   * (local executor, no GPUs): it keeps no global state between runs, writes
   * only through ctx (log, outputFd) and stops promptly on ctx.signal. Kinds
   * that hold large memory or native state (tfjs) leave this unset and get a
   * fresh process per attempt.
   */
  pooled?: boolean;
  run(ctx: StageContext, params: P): Promise<void>;
  /**
   * For kinds whose output is a page people read (a report): the page of
   * `current` beside the same instance's output in an earlier run, as one
   * self-contained HTML document. `smke run` writes it outside the store
   * (results/<instance>.compare.html), because it depends on run history,
   * which no cache key covers; import the renderer lazily, as in `run`.
   */
  compare?(c: RunComparison): Promise<string>;
}

/**
 * Any stage kind, its parameter type hidden: what the registry holds and the
 * runtime calls. Its methods take the parameters as the plan carries them;
 * they are only ever handed parameters the compiler validated against this
 * kind's own schema, which is what makes them the kind's `P`.
 */
export interface AnyStageKind extends KindInfo {
  passEnv?(params: Record<string, Value>): string[];
  pooled?: boolean;
  compare?(c: RunComparison): Promise<string>;
  run(ctx: StageContext, params: Record<string, Value>): Promise<void>;
}

/**
 * Declares a kind, typing its methods' parameters from its schema, and hides
 * that type for the registry's heterogeneous list. The one place parameters
 * go from `Record<string, Value>` to the kind's own type: sound because
 * every caller passes parameters validated against `kind.params`.
 */
export function defineKind<const S extends ObjectSchema>(kind: StageKind<ParamsOf<S>> & { params: S }): AnyStageKind {
  return kind as unknown as AnyStageKind;
}
