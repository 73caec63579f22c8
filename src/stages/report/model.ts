// The report as data: rows, their baselines and expectations, curves. Built
// by paper-run.ts from the store, rendered by render-report.ts; kept free of I/O so
// the rendering and the expectation bands can be tested on fixtures.

export interface Provenance {
  /** Stage instance that produced the metrics (`glue[cola]`). */
  stage: string;
  key: string;
  /** When the instance finished (ISO), and how long it ran. */
  finished?: string;
  seconds?: number;
  backend?: string;
  host?: string;
}

export interface Row {
  /** Stable id used by `expect` and report.json: `glue.sst2`, `pretrained.coco_r1`. */
  id: string;
  table: string;
  label: string;
  /** What the value measures: `top-1 %`, `Matthews x100`. */
  metric: string;
  value: number;
  /** Chance or majority-class value of the same metric on the same data (undefined: none applies). */
  baseline?: number;
  baselineKind?: string;
  /**
   * Standard error of the metric for a model without signal on this
   * evaluation set (its size and label balance): bands may say
   * `> chance + 2 se`, "above the baseline by two standard errors".
   */
  baselineSe?: number;
  /** Shown instead of the number (a verdict row: `held` / `not held`). */
  text?: string;
  published?: number;
  expect?: string;
  /** Whether the value is inside its band (undefined without an expectation). */
  ok?: boolean;
  provenance?: Provenance;
}

export interface Curve {
  /** Stage instance (or label) the curve comes from. */
  label: string;
  /** Series name -> points (step, value), for the loss panel and the accuracy panel. */
  loss: Record<string, [number, number][]>;
  accuracy: Record<string, [number, number][]>;
}

export interface Report {
  title: string;
  scale: string;
  generated: string;
  tables: { id: string; title: string; note?: string }[];
  rows: Row[];
  curves: Curve[];
  /** Expectations that failed, in words, naming the row. */
  failures: string[];
}

export const TABLES: { id: string; title: string; note?: string }[] = [
  { id: 'pretrained', title: 'Pretrained S-SMKE: zero-shot ImageNet, zero-shot retrieval R@1, parameters' },
  { id: 'zs_retrieval', title: 'Zero-shot retrieval (TR@k, IR@k)' },
  { id: 'image', title: 'Image classification: linear eval and finetune (top-1 %)' },
  { id: 'glue', title: 'GLUE (dev sets, x100)' },
  { id: 'retrieval', title: 'Retrieval finetune (TR@1, IR@1)' },
  { id: 'ablation', title: 'Ablation at equal steps' },
];

// ---- expectation bands -----------------------------------------------------

export class BandError extends Error {}

type Bound = { base: 'number' | 'chance'; op?: '+' | '-' | '*'; n: number; se?: boolean };

function parseBound(text: string, band: string): Bound {
  const t = text.trim();
  const num = Number(t);
  if (t !== '' && Number.isFinite(num)) return { base: 'number', n: num };
  const m = /^chance(?:\s*([+*-])\s*([0-9.eE+-]+?)(\s*se)?)?$/.exec(t);
  if (m) {
    if (!m[1]) return { base: 'chance', n: 0 };
    const n = Number(m[2]);
    if (!Number.isFinite(n)) throw new BandError(`bad number '${m[2]}' in band '${band}'`);
    if (m[3] && m[1] === '*')
      throw new BandError(`bad bound '${t}' in band '${band}': standard errors add to chance ('chance + 2 se'), they do not multiply it`);
    return { base: 'chance', op: m[1] as '+' | '-' | '*', n, se: m[3] !== undefined };
  }
  throw new BandError(`bad bound '${t}' in band '${band}': write a number, 'chance', 'chance + N', 'chance * N' or 'chance + N se'`);
}

function boundValue(b: Bound, chance: number | undefined, band: string, se?: number): number {
  if (b.base === 'number') return b.n;
  if (chance === undefined) throw new BandError(`band '${band}' uses 'chance' but the row has no chance baseline`);
  if (!b.op) return chance;
  let n = b.n;
  if (b.se) {
    if (se === undefined) throw new BandError(`band '${band}' uses 'se' but the row has no standard error (only GLUE rows have one)`);
    n *= se;
  }
  return b.op === '+' ? chance + n : b.op === '-' ? chance - n : chance * n;
}

/**
 * A band: `>= 60`, `> 60`, `<= 5`, `< 5`, `40..90` (inclusive), where each
 * bound may also be `chance`, `chance + N`, `chance - N`, `chance * N`, or
 * `chance + N se` (N standard errors of the row's baseline, `se`).
 * Returns whether `value` is inside; throws BandError on bad syntax.
 */
export function inBand(band: string, value: number, chance?: number, se?: number): boolean {
  const s = band.trim();
  const range = /^(.+?)\s*\.\.\s*(.+)$/.exec(s);
  if (range && !/^[<>]/.test(s)) {
    const lo = boundValue(parseBound(range[1]!, band), chance, band, se);
    const hi = boundValue(parseBound(range[2]!, band), chance, band, se);
    return value >= lo && value <= hi;
  }
  const m = /^(>=|<=|>|<)\s*(.+)$/.exec(s);
  if (!m) throw new BandError(`bad band '${band}': write '>= N', '> N', '<= N', '< N' or 'A..B'`);
  const v = boundValue(parseBound(m[2]!, band), chance, band, se);
  switch (m[1]) {
    case '>=':
      return value >= v;
    case '>':
      return value > v;
    case '<=':
      return value <= v;
    default:
      return value < v;
  }
}

/**
 * Applies `expect` (row id -> band) to the rows, in place. Every expectation
 * must name an existing row: a typo must not silently check nothing.
 */
export function applyExpectations(rows: Row[], expect: Record<string, string>): string[] {
  const failures: string[] = [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const [id, band] of Object.entries(expect)) {
    const row = byId.get(id);
    if (!row) {
      const near = [...byId.keys()].filter((k) => k.split('.')[0] === id.split('.')[0]).slice(0, 12);
      failures.push(
        `expect '${id}': no such row${near.length ? ` (rows of that table: ${near.join(', ')})` : ` (rows: ${[...byId.keys()].slice(0, 12).join(', ')}, ...)`}`,
      );
      continue;
    }
    row.expect = band;
    let ok: boolean;
    try {
      ok = Number.isFinite(row.value) && inBand(band, row.value, row.baseline, row.baselineSe);
    } catch (err) {
      failures.push(`expect '${id}': ${(err as Error).message}`);
      row.ok = false;
      continue;
    }
    row.ok = ok;
    if (!ok) {
      const chance = row.baseline !== undefined ? ` (chance ${fmt(row.baseline)}${row.baselineSe !== undefined ? `, se ${fmt(row.baselineSe)}` : ''})` : '';
      failures.push(`${id} (${row.label}, ${row.metric}) = ${fmt(row.value)} is outside its band '${band}'${chance}`);
    }
  }
  return failures;
}

export function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '—';
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  // Counts (parameters) read best grouped; measured percentages with one decimal, small ones with two.
  if (Number.isInteger(v) && Math.abs(v) >= 1000) return v.toLocaleString('en-US');
  return v.toFixed(Math.abs(v) < 1 && v !== 0 ? 2 : 1);
}

// ---- comparison with an earlier run -----------------------------------------

/** One row of this run beside the same row (same id) of an earlier run's report. */
export interface RowChange {
  /** The earlier run had no such row (or no report at all). */
  previous?: { value: number; text?: string };
  /** value - previous value; undefined for verdict rows and rows without a previous value. */
  delta?: number;
  /** A verdict row whose text changed, or a value that moved (NaN to NaN is no move). */
  changed: boolean;
  /**
   * Two standard errors of the difference of two evaluations of this row,
   * 2 sqrt(2) se with the row's `se` (GLUE rows): a change beyond it is more
   * than the evaluation set's size lets noise explain. Undefined without se.
   */
  noise?: number;
}

export function compareRow(current: Row, previous: Row | undefined): RowChange {
  if (!previous) return { changed: false };
  const prev = { value: previous.value, ...(previous.text !== undefined && { text: previous.text }) };
  const noise = current.baselineSe !== undefined ? 2 * Math.SQRT2 * current.baselineSe : undefined;
  if (current.text !== undefined || previous.text !== undefined)
    return { previous: prev, changed: current.text !== previous.text || current.value !== previous.value };
  const bothNaN = Number.isNaN(current.value) && Number.isNaN(previous.value);
  const delta = bothNaN ? 0 : current.value - previous.value;
  return { previous: prev, delta, changed: !bothNaN && current.value !== previous.value, noise };
}
