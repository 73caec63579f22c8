// The local worker pool's head start. A pooled worker takes ~0.2 s to be
// ready (Node, then the modules a job needs), which a short pipeline waits
// for before its first stage. `smke run` therefore starts the first worker as
// soon as its plan is loaded, before it loads the orchestrator (~50 ms of
// modules) and analyses the plan; runPlan starts it itself when its caller
// did not. Whether a stage runs pooled needs its kind, so only the plan's own
// kinds are loaded (../stages/kind-loader.ts), never the whole registry.

import { join } from 'node:path';
import type { Plan } from '../compiler/plan.js';
import { loadKind } from '../stages/kind-loader.js';
import type { LocalExecutor } from './executors/local.js';
import { jobEnv, runsPooled } from './passenv.js';

/**
 * When an instance of the plan would run in the local worker pool, the local
 * executor with its first pooled worker started (its output, normally none,
 * goes to `logsDir`/workers.log); undefined otherwise. If nothing turns out
 * to need running, closing the executor kills that worker.
 */
export async function prestartPool(plan: Plan, o: { defaultExecutor: string; logsDir: string }): Promise<LocalExecutor | undefined> {
  const local = plan.instances.filter((inst) => inst.resources.gpus === 0 && (inst.executor ?? o.defaultExecutor) !== 'slurm');
  const kinds = new Map(await Promise.all([...new Set(local.map((i) => i.kind))].map(async (k) => [k, await loadKind(k)] as const)));
  if (!local.some((inst) => runsPooled(inst, false, kinds.get(inst.kind)))) return undefined;
  const executor = new (await import('./executors/local.js')).LocalExecutor();
  try {
    executor.prestart({ cwd: plan.projectDir, env: jobEnv([], 0, false), workerLog: join(o.logsDir, 'workers.log') });
  } catch {
    // Only a head start: what stopped it (a file where logs/ belongs) fails the stages, each with the reason, when they start.
  }
  return executor;
}
