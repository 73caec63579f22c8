// The Plan: what the compiler hands to the runtime. This file is the contract
// between the two layers (docs/architecture.md); the compiler builds it, the
// runtime only reads it. Nothing here may import from src/runtime.

/** A place in a source file. Lines and columns are 1-based; offset is 0-based. */
export interface SourceSpan {
  file: string;
  line: number;
  column: number;
  /** Character offset of the span's start in the file. */
  offset: number;
  /** Length of the span in characters (at least 1 for diagnostics). */
  length: number;
}

/**
 * A reference to a named output of another stage instance, e.g.
 * `s_smke.checkpoint`. References stay symbolic in the Plan: the runtime puts
 * the upstream key into the fingerprint and, at run time, replaces the
 * reference with the absolute path of the upstream store entry's output.
 */
export interface OutputRef {
  $ref: {
    /** Instance id of the upstream stage, e.g. `s_smke` or `glue[cola]`. */
    instance: string;
    /** Output name declared by the upstream kind's `outputs(params)`. */
    output: string;
  };
}

/** A fully resolved parameter value. Sizes are bytes, durations are seconds. */
export type Value = string | number | boolean | null | Value[] | { [key: string]: Value } | OutputRef;

export function isOutputRef(v: unknown): v is OutputRef {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && '$ref' in v && typeof (v as OutputRef).$ref === 'object' && (v as OutputRef).$ref !== null;
}

/** What one instance asks of the machine. Not part of the cache key. */
export interface Resources {
  cpus: number;
  gpus: number;
  /** Memory in bytes; 0 means "not declared". */
  memBytes: number;
  /** Wall-clock limit in seconds; 0 means none. */
  timeSeconds: number;
}

/** The executors a stage may choose with `executor = "..."`; the runtime has one for each. */
export const EXECUTORS = ['local', 'slurm'] as const;

export const DEFAULT_RESOURCES: Resources = { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0 };

/** One node of the DAG: a stage, or one cell of a matrix stage. */
export interface StageInstance {
  /** Unique id: the stage name, or `name[v1,v2]` for a matrix cell (e.g. `glue[cola]`). */
  id: string;
  /** The stage's declared name (the matrix family for matrix cells). */
  stage: string;
  /** Axis name -> value for matrix cells; empty for plain stages. */
  matrix: Record<string, Value>;
  /** Registered kind name, e.g. `exec` or `train.s_smke`. */
  kind: string;
  /** The kind's version at compile time (part of the cache key). */
  kindVersion: number;
  /** Parameters after resolution and schema defaults; may contain OutputRefs. */
  params: Record<string, Value>;
  /** Every output reference found in params, deduplicated, in order of appearance. */
  refs: OutputRef['$ref'][];
  /** Explicit ordering dependencies (`after`), as instance ids. Not data: no key effect beyond order. */
  after: string[];
  /**
   * Input files, directories or globs declared by the kind for these params,
   * relative to the project directory (or absolute). Their content is digested into the key.
   */
  inputs: string[];
  /** Names of environment variables whose values go into the key. */
  env: string[];
  resources: Resources;
  /** How many times to retry a failed attempt (0 = run once). */
  retries: number;
  /** Executor chosen by the stage (`local`, `slurm`), or undefined for the run's default. */
  executor?: string;
  /** Where the stage is declared. */
  span: SourceSpan;
}

export interface Plan {
  /** Absolute path of the root .smke file. */
  file: string;
  /** The project directory: relative paths in params and inputs are resolved against it. */
  projectDir: string;
  /** The chosen profile. */
  profile: string;
  /** Resolved pipeline parameters (after profile and --set). */
  params: Record<string, Value>;
  /** Instances in a deterministic topological order (upstream first). */
  instances: StageInstance[];
  /** Every .smke file read to build this plan (root first), with its sha256, for plan caching. */
  sources: { path: string; sha256: string }[];
}
