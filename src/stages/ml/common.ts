// Shared by the ml and eval stage kinds' run functions: backend setup,
// per-step metrics and progress, final metrics, and typed parameter access.
// Imported only inside `run` (it loads tfjs through src/ml/backend).

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext } from '../stage-kind.js';
import { selectBackend, type BackendChoice } from '../../ml/backend.js';

export const METRICS_FILE = 'metrics.json';

/** The backend the stage asks for (`backend =`), else the run's (`--backend`), else the fastest available. */
export async function setupBackend(ctx: StageContext, params: { backend: string }): Promise<BackendChoice> {
  const requested = params.backend || ctx.backend || undefined;
  return selectBackend(requested, (m) => ctx.log.info(m));
}

export async function writeMetrics(ctx: StageContext, metrics: Record<string, number | string>): Promise<void> {
  for (const [k, v] of Object.entries(metrics)) if (typeof v === 'number') ctx.metric(k, v);
  await writeFile(join(ctx.outDir, METRICS_FILE), JSON.stringify(metrics, null, 2) + '\n');
}

/** Reports progress in steps and the per-step loss, lr and throughput (examples/s). */
export class StepReporter {
  constructor(
    private readonly ctx: StageContext,
    private readonly total: number,
    private readonly examplesPerStep: number,
  ) {}

  /**
   * `step` counts completed steps (1-based); `seconds` is that step's own time, measured by the loop:
   * a step's values are read one step late (the next is queued first), sometimes two at once, so
   * the time between two reports is not a step's time.
   */
  report(step: number, values: Record<string, number>, seconds: number): number {
    const throughput = this.examplesPerStep / Math.max(1e-6, seconds);
    for (const [k, v] of Object.entries(values)) this.ctx.metric(k, v, step);
    this.ctx.metric('throughput', throughput, step);
    this.ctx.progress(step, this.total, 'steps');
    return throughput;
  }
}

/** One dataset directory or several, as a list (the `pairs` params). */
export function dirList(v: string | string[]): string[] {
  return Array.isArray(v) ? [...v] : [v];
}
