// Everything the runtime does is an event; renderers (TTY, plain, JSON) and
// tests consume them. The runtime never asks a renderer anything.

import type { EntryFile } from './state.js';
import type { AttemptFailure } from './attempt-failure.js';

export type RunEvent =
  | { type: 'planned'; instance: string; stage: string; key: string; action: 'cached' | 'run'; reasons: string[] }
  | {
      type: 'cached';
      instance: string;
      key: string;
      reused?: boolean;
      /** Downloaded from the remote cache rather than run. */ pulled?: boolean;
      cutoff?: string;
    }
  /**
   * The no-op fast path answered: all `count` instances are cached, exactly as after run `sameAs`.
   * Per-instance `planned` and `cached` events follow only where asked for (--json, runPlan).
   */
  | { type: 'noop'; count: number; sameAs: number }
  | { type: 'pushed'; instance: string; key: string }
  | { type: 'queued'; instance: string }
  | { type: 'waiting'; instance: string; holder: string }
  | { type: 'started'; instance: string; key: string; attempt: number; logPath: string; gpuIds: number[] }
  | { type: 'progress'; instance: string; done: number; total: number; unit?: string }
  | { type: 'metric'; instance: string; name: string; value: number; step?: number }
  | { type: 'log'; instance: string; level: string; message: string }
  | { type: 'succeeded'; instance: string; key: string; seconds: number }
  /** `error` is `reason` in words (describeFailure); `reason` is absent when no attempt ran (e.g. more GPUs than the pool). */
  | { type: 'failed'; instance: string; key: string; error: string; reason?: AttemptFailure; logPath?: string; attempt: number }
  | { type: 'retried'; instance: string; attempt: number; error: string; reason?: AttemptFailure }
  | { type: 'skipped'; instance: string; because: string }
  | { type: 'cancelled'; instance: string }
  | { type: 'warning'; message: string; instance?: string }
  | { type: 'summary'; ran: number; cached: number; failed: number; skipped: number; cancelled: number; seconds: number; dryRun: boolean };

export type Listener = (e: RunEvent) => void;

export class EventBus {
  private readonly listeners: Listener[] = [];
  on(l: Listener): void {
    this.listeners.push(l);
  }
  emit(e: RunEvent): void {
    for (const l of this.listeners) l(e);
  }
}

/** Events a worker streams to its orchestrator (one JSON object per line). */
export type WorkerEvent =
  | { type: 'progress'; done: number; total: number; unit?: string }
  | { type: 'metric'; name: string; value: number; step?: number }
  | { type: 'log'; level: string; message: string }
  | {
      type: 'final';
      status: 'succeeded' | 'failed' | 'cancelled' | 'lost-lock';
      error?: string;
      /** Why it failed, when the worker knows more than the text (declared outputs missing). */
      reason?: AttemptFailure;
      published?: 'published' | 'exists';
      /** For an entry the worker published: its files as digested (the orchestrator's `checkEntry` known files). */
      files?: EntryFile[];
    };
