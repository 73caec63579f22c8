// Where a run's time went, for `smke history`: each attempt's wall time (from
// the orchestrator's records) split into the stage's own time (measured by the
// worker around kind.run, kept in the entry's manifest) and smke's overhead
// (starting the worker, locks, publishing, recording).

import { join } from 'node:path';
import type { AttemptRow } from './state.js';
import { readManifest } from './store.js';

export interface AttemptTime {
  /** Start of the attempt to its end, as the orchestrator saw it. */
  seconds?: number;
  /** The stage's own run time; only for attempts that published their entry. */
  stageSeconds?: number;
  overheadSeconds?: number;
}

export function attemptTime(t: AttemptRow, storeDir: string): AttemptTime {
  if (t.finished_ms === null || t.status === 'cut off') return {};
  const seconds = (t.finished_ms - t.started_ms) / 1000;
  if (t.status !== 'succeeded') return { seconds };
  const m = readManifest(join(storeDir, t.key));
  const started = m ? Date.parse(m.timings.started) : NaN;
  // The entry may have been published by another run's attempt: its times are not ours.
  if (!m || !(started >= t.started_ms - 1000 && started <= t.finished_ms)) return { seconds };
  const stageSeconds = m.timings.seconds;
  return { seconds, stageSeconds, overheadSeconds: Math.max(0, seconds - stageSeconds) };
}

/** Totals over a run's attempts that have both times. */
export function runTimes(times: AttemptTime[]): { stageSeconds: number; overheadSeconds: number } | undefined {
  const both = times.filter((x) => x.stageSeconds !== undefined);
  if (!both.length) return undefined;
  return {
    stageSeconds: both.reduce((s, x) => s + x.stageSeconds!, 0),
    overheadSeconds: both.reduce((s, x) => s + x.overheadSeconds!, 0),
  };
}
