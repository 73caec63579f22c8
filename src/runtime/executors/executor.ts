// The executor interface. A job is a command line (the worker:
// `smke worker <job.json>`) plus resources, environment and a log path:
// nothing relies on memory shared with the orchestrator, so the same job runs
// as a local process group or as a Slurm batch job.

import type { Resources } from '../../compiler/plan.js';
import type { WorkerEvent } from '../events.js';
import type { JobSpec } from '../job.js';

export interface JobRequest {
  /** Instance id, for display and scheduler job names. */
  name: string;
  /** The full command line (argv[0] is the program). */
  command: string[];
  cwd: string;
  /** Set on top of the passed environment (e.g. CUDA_VISIBLE_DEVICES). */
  env: Record<string, string>;
  /**
   * Names passed from smke's environment beyond the allow-list every stage
   * gets (./secrets.ts stageEnv): what the stage's kind or the stage declares.
   * Nothing else of smke's environment reaches the job.
   */
  passEnv?: string[];
  resources: Resources & { gpuIds: number[] };
  /** Where the job's stdout and stderr go. */
  logPath: string;
  /**
   * A file the worker appends its events to when it has no pipe to the
   * orchestrator (remote executors tail it). Executors that can stream
   * events over a pipe set SMKE_EVENTS_FD instead.
   */
  eventsPath: string;
  /**
   * Set when the job may run in a long-lived pooled worker (local executor):
   * the job itself, sent over a pipe; `command` is then not used. Executors
   * without a pool run `command` as usual.
   */
  pooled?: JobSpec;
}

export interface JobHandle {
  readonly id: string;
}

export interface JobExit {
  /** Exit code, or null when killed by a signal. */
  exitCode: number | null;
  signal: string | null;
}

export interface Executor {
  readonly name: string;
  /** Start the job; `onEvent` receives the worker's events as they arrive. */
  submit(job: JobRequest, onEvent: (e: WorkerEvent) => void): Promise<JobHandle>;
  /** Resolves when the job has ended (a batch executor polls; the local one waits). */
  wait(handle: JobHandle): Promise<JobExit>;
  /** Ask the job to stop (SIGTERM), then force it after `graceMs`. Resolves once the request is made. */
  cancel(handle: JobHandle, graceMs?: number): Promise<void>;
}
