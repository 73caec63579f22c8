// The scheduler: runs tasks in dependency order as the pools allow.
//
// It knows nothing of stages, stores or processes: a task is an id, its
// dependencies, what it asks for, and how often it may be retried; `run`
// does the work. Dependencies are counted down (Kahn's algorithm) so picking
// the next tasks costs O(ready), which keeps 10,000-task plans instant.
// GPUs are handed out as device indexes, and one index is never given to two
// running tasks.

import type { Resources } from '../compiler/plan.js';

export interface Task {
  id: string;
  deps: string[];
  resources: Resources;
  retries: number;
}

export interface Grant {
  gpuIds: number[];
  cpus: number;
  memBytes: number;
}

export type Outcome = { status: 'succeeded' } | { status: 'failed'; error: string } | { status: 'cancelled' };

export interface Pools {
  cpus: number;
  gpus: number;
  /** Bytes; tasks that declare no memory take none. */
  memBytes: number;
}

export interface SchedulerHooks {
  /** Do the task's work. `signal` aborts on cancel. */
  run(task: Task, attempt: number, grant: Grant, signal: AbortSignal): Promise<Outcome>;
  onRetry?(task: Task, attempt: number, error: string): void;
  onSkip?(task: Task, because: string): void;
  onFail?(task: Task, error: string): void;
}

export interface SchedulerOptions {
  jobs: number;
  pools: Pools;
  keepGoing: boolean;
}

export type FinalState = 'succeeded' | 'failed' | 'cancelled' | 'skipped';

export class Scheduler {
  private readonly controller = new AbortController();
  private cancelled = false;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: SchedulerOptions) {}

  /** Stop launching; running tasks see their signal aborted. */
  cancel(): void {
    this.cancelled = true;
    this.controller.abort();
    this.wake?.();
  }

  async run(tasks: Task[], hooks: SchedulerHooks): Promise<Map<string, FinalState>> {
    const { pools } = this.opts;
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const waiting = new Map<string, number>();
    const children = new Map<string, string[]>();
    const final = new Map<string, FinalState>();
    const ready: Task[] = [];
    for (const t of tasks) {
      let n = 0;
      for (const d of t.deps) {
        if (!byId.has(d)) continue; // done before this run (cached)
        n++;
        let c = children.get(d);
        if (!c) children.set(d, (c = []));
        c.push(t.id);
      }
      waiting.set(t.id, n);
      if (n === 0) ready.push(t);
    }

    // Requests larger than the machine: cpus and memory are capped at the
    // pool (the task then runs alone); GPUs cannot be, so such a task fails.
    const need = (t: Task): Grant => ({
      gpuIds: [],
      cpus: Math.min(Math.max(t.resources.cpus, 0), pools.cpus),
      memBytes: Math.min(Math.max(t.resources.memBytes, 0), pools.memBytes),
    });
    let freeCpus = pools.cpus;
    let freeMem = pools.memBytes;
    const freeGpus = Array.from({ length: pools.gpus }, (_, i) => i);
    let running = 0;
    let halted = false;
    const attempts = new Map<string, number>();

    const skipBelow = (id: string, because: string): void => {
      const stack = [...(children.get(id) ?? [])];
      while (stack.length) {
        const c = stack.pop()!;
        if (final.has(c)) continue;
        final.set(c, 'skipped');
        hooks.onSkip?.(byId.get(c)!, because);
        for (const k of children.get(c) ?? []) stack.push(k); // not push(...): 200k children overflow the stack
      }
    };

    const finish = (t: Task, state: FinalState): void => {
      final.set(t.id, state);
      if (state === 'succeeded') {
        for (const c of children.get(t.id) ?? []) {
          const n = waiting.get(c)! - 1;
          waiting.set(c, n);
          if (n === 0 && !final.has(c)) ready.push(byId.get(c)!);
        }
      } else if (state === 'failed') {
        skipBelow(t.id, `${t.id} failed`);
        if (!this.opts.keepGoing) halted = true;
      } else if (state === 'cancelled') {
        skipBelow(t.id, `${t.id} was cancelled`);
      }
    };

    const launch = (t: Task, g: Grant): void => {
      const attempt = (attempts.get(t.id) ?? 0) + 1;
      attempts.set(t.id, attempt);
      running++;
      freeCpus -= g.cpus;
      freeMem -= g.memBytes;
      void hooks
        .run(t, attempt, g, this.controller.signal)
        .catch((e: unknown): Outcome => ({ status: 'failed', error: e instanceof Error ? e.message : String(e) }))
        .then((o) => {
          running--;
          freeCpus += g.cpus;
          freeMem += g.memBytes;
          freeGpus.push(...g.gpuIds);
          freeGpus.sort((a, b) => a - b);
          if (o.status === 'failed' && attempt <= t.retries && !this.cancelled && !halted) {
            hooks.onRetry?.(t, attempt, o.error);
            ready.unshift(t);
          } else if (o.status === 'failed') {
            hooks.onFail?.(t, o.error);
            finish(t, 'failed');
          } else finish(t, o.status);
          this.wake?.();
        });
    };

    for (;;) {
      if (!this.cancelled && !halted) {
        let i = 0;
        while (i < ready.length && running < this.opts.jobs) {
          const t = ready[i]!;
          if (t.resources.gpus > pools.gpus) {
            ready.splice(i, 1);
            const error =
              `needs ${t.resources.gpus} GPU(s) but the pool has ${pools.gpus}: ` +
              (pools.gpus === 0 ? 'pass --gpus N on a machine with GPUs' : 'lower its gpus or run where there are more');
            hooks.onFail?.(t, error);
            finish(t, 'failed');
            if (halted) break;
            continue;
          }
          const g = need(t);
          if (g.cpus <= freeCpus && g.memBytes <= freeMem && t.resources.gpus <= freeGpus.length) {
            g.gpuIds = freeGpus.splice(0, t.resources.gpus);
            ready.splice(i, 1);
            launch(t, g);
          } else if (freeCpus <= 0) break;
          else i++;
        }
      }
      if (running === 0) break;
      await new Promise<void>((res) => (this.wake = res));
      this.wake = undefined;
    }
    for (const t of tasks) {
      if (final.has(t.id)) continue;
      if (this.cancelled) final.set(t.id, 'cancelled');
      else {
        final.set(t.id, 'skipped');
        hooks.onSkip?.(t, 'not started after a failure (-k keeps going with independent stages)');
      }
    }
    return final;
  }
}
