// The no-op's stat check, begun as `smke run` starts. A no-op run spends most
// of its time in two things in series: loading smke's modules and validating
// the plan cache (which names the snapshot), then the native checker's stats
// of every recorded path (./stat-list.ts). A run that writes a no-op snapshot
// also leaves a hint here: its arguments, and the stat list and store it
// checks against. A later `smke run` with the same arguments starts the
// checker on that list before it loads anything else, and the snapshot check
// takes the running check over if it turns out to want the same list against
// the same store (the verdict names the list's id, which the snapshot must
// match, as for any check). A wrong hint costs a checker nobody waits for.
//
// Imported by the CLI entry before the command's own modules: what it imports
// the no-op loads anyway.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { layout } from './layout.js';
import { startEarlyCheck } from './stat-list.js';

interface EarlyCheckHint {
  argv: string[];
  statList: string;
  storeDir: string;
}

/** The hint's file in the plan cache's directory (`Layout.plansDir`). */
export function earlyCheckHintPath(plansDir: string): string {
  return join(plansDir, 'early-check.json');
}

/** The hint to leave beside a snapshot: `argv` as `smke run` got it (after `run`). */
export function earlyCheckHint(argv: string[], statList: string, storeDir: string): string {
  const hint: EarlyCheckHint = { argv, statList, storeDir };
  return JSON.stringify(hint);
}

/** If the last snapshot in `projectDir` was written by a run with these arguments, begin checking its stat list. */
export function startRunEarlyCheck(projectDir: string, argv: string[]): void {
  let hint: EarlyCheckHint;
  try {
    hint = JSON.parse(readFileSync(earlyCheckHintPath(layout(projectDir).plansDir), 'utf8')) as EarlyCheckHint;
  } catch {
    return;
  }
  if (typeof hint.statList !== 'string' || typeof hint.storeDir !== 'string' || !Array.isArray(hint.argv)) return;
  if (hint.argv.length !== argv.length || hint.argv.some((a, i) => a !== argv[i])) return;
  startEarlyCheck(hint.statList, hint.storeDir);
}
