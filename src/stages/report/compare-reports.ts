// report.paper's `compare`: this run's report beside an earlier run's, drawn
// by the report's own renderer with two more columns (the earlier value, the
// change). Both reports are read from their store entries' report.json, so
// the page shows what each run published, and nothing is recomputed.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ComparedRun, RunComparison } from '../stage-kind.js';
import { compareRow, type Report } from './model.js';
import { renderHtml } from './render-report.js';

function readReport(dir: string, run: number): Report {
  const file = join(dir, 'report.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Report;
  } catch (e) {
    throw new Error(`run ${run}'s report cannot be read (${file}: ${(e as Error).message}); smke verify checks the store`);
  }
}

const when = (r: ComparedRun): string => `run ${r.run} (started ${r.started.replace(/\.\d+Z$/, 'Z')}${r.profile ? `, profile ${r.profile}` : ''})`;

export function compareReports(c: RunComparison): string {
  const current = readReport(c.current.dir, c.current.run);
  const prev = c.previous;
  const summary = [`This page: ${c.instance} of ${when(c.current)}, store entry ${c.current.key.slice(0, 12)}.`];
  let rows: Map<string, ReturnType<typeof compareRow>> | undefined;
  if (!prev) {
    summary.push(`No earlier run of ${c.instance} to compare with: the values of the previous run appear here once a later run changes something.`);
  } else if (!prev.dir) {
    summary.push(`Compared with ${when(prev)}: its entry ${prev.key.slice(0, 12)} is gone from the store (smke gc), so its values cannot be shown.`);
  } else {
    const previous = readReport(prev.dir, prev.run);
    const byId = new Map(previous.rows.map((r) => [r.id, r]));
    rows = new Map(current.rows.map((r) => [r.id, compareRow(r, byId.get(r.id))]));
    const moved = current.rows.filter((r) => rows!.get(r.id)!.changed).length;
    const added = current.rows.filter((r) => !byId.has(r.id)).length;
    summary.push(
      prev.key === c.current.key
        ? `Compared with ${when(prev)}: the same store entry, so no row changed.`
        : `Compared with ${when(prev)}, entry ${prev.key.slice(0, 12)}: ${moved} of ${current.rows.length} rows changed${added ? `, ${added} new` : ''}.`,
    );
    const gone = previous.rows.filter((r) => !current.rows.some((x) => x.id === r.id)).map((r) => r.id);
    if (gone.length) summary.push(`Rows only in run ${prev.run}: ${gone.join(', ')}.`);
    if (current.rows.some((r) => r.baselineSe !== undefined))
      summary.push(
        'A change is beyond noise when it exceeds two standard errors of a difference of two evaluations on the same set size: 2 × √2 × the row’s se.',
      );
  }
  if (prev) summary.push(...(c.changes.length ? c.changes.map((l) => `Differs between the runs: ${l}`) : ['No instance differs between the two runs.']));
  const unavailable = prev && !prev.dir ? 'entry gone' : undefined;
  return renderHtml(current, { previousLabel: prev ? `run ${prev.run}` : 'previous run', summary, rows, unavailable });
}
