// Small text helpers shared by the renderers and commands.
import { relative } from 'node:path';

/** Colour only on a terminal and never with NO_COLOR set (https://no-color.org). */
export function colours(stream: NodeJS.WriteStream | { isTTY?: boolean }): (code: number, s: string) => string {
  const on = stream.isTTY === true && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '') && process.env.TERM !== 'dumb';
  return on ? (code, s) => `\x1b[${code}m${s}\x1b[0m` : (_c, s) => s;
}

export function seconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** A path as short as it can be shown from the current directory. */
export function shown(path: string): string {
  const r = relative(process.cwd(), path);
  return r && !r.startsWith('../../') ? r : path;
}

/**
 * A stage's first progress report. Its rate is measured from there, not from
 * the stage's start: setting up (loading a model, reading data) can take
 * longer than many steps, and counted as the first step's time it made the
 * first ETA wildly long (`1/80 steps, ETA 56m`).
 */
export interface ProgressStart {
  ms: number;
  done: number;
}

/** "12/100 steps (12%, ETA 1m04s)"; the ETA once there is progress since `from`. */
export function progressText(done: number, total: number, unit: string | undefined, from: ProgressStart | undefined, nowMs = Date.now()): string {
  const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0;
  let eta = '';
  const elapsed = from ? (nowMs - from.ms) / 1000 : 0;
  if (from && done > from.done && total > done && elapsed > 0) eta = `, ETA ${seconds(((total - done) * elapsed) / (done - from.done))}`;
  return `${done}/${total}${unit ? ` ${unit}` : ''} (${pct}%${eta})`;
}
