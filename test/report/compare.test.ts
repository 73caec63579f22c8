// The comparison of a report with an earlier run's: the change of each row
// (model.ts compareRow), and the page report.paper's `compare` draws from two
// store entries' report.json with the report's own renderer.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compareRow, type Report, type Row } from '../../src/stages/report/model.js';
import { renderHtml } from '../../src/stages/report/render-report.js';
import { registry } from '../../src/stages/registry.js';
import { tempProject } from '../runtime/helpers.js';

const row = (id: string, value: number, more: Partial<Row> = {}): Row => ({ id, table: 'glue', label: id, metric: 'accuracy x100', value, ...more });

describe('compareRow', () => {
  it('gives the previous value and the change, beyond noise only past 2 se of a difference', () => {
    // se 5: two standard errors of a difference of two evaluations = 2 sqrt(2) 5 = 14.14.
    expect(compareRow(row('a', 80, { baselineSe: 5 }), row('a', 60))).toEqual({ previous: { value: 60 }, delta: 20, changed: true, noise: 2 * Math.SQRT2 * 5 });
    const within = compareRow(row('a', 70, { baselineSe: 5 }), row('a', 60));
    expect(within.delta).toBe(10);
    expect(Math.abs(within.delta!) > within.noise!).toBe(false);
    expect(compareRow(row('a', 55), row('a', 60))).toEqual({ previous: { value: 60 }, delta: -5, changed: true, noise: undefined });
  });

  it('an unchanged value, NaN on both sides, and no earlier row are no change', () => {
    expect(compareRow(row('a', 60), row('a', 60))).toMatchObject({ delta: 0, changed: false });
    expect(compareRow(row('a', NaN), row('a', NaN))).toMatchObject({ delta: 0, changed: false });
    expect(compareRow(row('a', 60), row('a', NaN))).toMatchObject({ changed: true });
    expect(compareRow(row('a', 60), undefined)).toEqual({ changed: false });
  });

  it('a verdict row compares its text, without a numeric change', () => {
    const held = row('ablation.claim', 1, { text: 'held: +3.0' });
    expect(compareRow(held, row('ablation.claim', 1, { text: 'held: +3.0' }))).toEqual({ previous: { value: 1, text: 'held: +3.0' }, changed: false });
    expect(compareRow(held, row('ablation.claim', 0, { text: 'not held: -1.0' }))).toEqual({ previous: { value: 0, text: 'not held: -1.0' }, changed: true });
  });
});

const report = (rows: Row[]): Report => ({
  title: 'R',
  scale: 'mini',
  generated: 'now',
  tables: [{ id: 'glue', title: 'GLUE' }],
  rows,
  curves: [],
  failures: [],
});

describe("report.paper's compare", () => {
  let proj: { dir: string; cleanup: () => void };
  beforeEach(() => {
    proj = tempProject('smke-report-compare-');
  });
  afterEach(() => proj.cleanup());

  const entry = (name: string, rows: Row[]): string => {
    const dir = join(proj.dir, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'report.json'), JSON.stringify(report(rows)));
    return dir;
  };
  const compare = registry().get('report.paper')!.compare!;
  const run = (n: number, dir: string | undefined, key: string) => ({ run: n, started: '2026-01-01T00:00:00.000Z', dir, key });

  it('shows each row beside the earlier run, names new rows, rows gone and what differs between the runs', async () => {
    const cur = entry('b', [row('glue.rte', 80, { baselineSe: 5 }), row('glue.sst2', 70), row('glue.cola', 20)]);
    const prev = entry('a', [row('glue.rte', 60, { baselineSe: 5 }), row('glue.sst2', 70), row('glue.mrpc', 50)]);
    const html = await compare({
      instance: 'report',
      current: run(3, cur, 'b'.repeat(64)) as never,
      previous: run(2, prev, 'a'.repeat(64)),
      changes: ['glue[rte]: param lr: 0.002 -> 0.0025', 'report: upstream glue[rte] changed'],
    });
    expect(html).toContain('<title>R, compared with run 2</title>');
    expect(html).toMatch(
      /<tr id="row-glue\.rte"[^>]*>.*<td class="n previous" data-previous="60">60\.0<\/td><td class="change changed up" data-delta="20" data-beyond-noise="true">\+20\.0 <span/,
    );
    expect(html).toMatch(/<tr id="row-glue\.sst2".*<td class="change same" data-delta="0">no change<\/td>/);
    expect(html).toMatch(/<tr id="row-glue\.cola".*<td class="change none">new row<\/td>/);
    expect(html).toContain('Rows only in run 2: glue.mrpc.');
    expect(html).toContain('1 of 3 rows changed, 1 new.');
    expect(html).toContain('Differs between the runs: glue[rte]: param lr: 0.002 -&gt; 0.0025');
  });

  it('says so when there is no earlier run, or its entry is gone', async () => {
    const cur = entry('b', [row('glue.rte', 80)]);
    const first = await compare({ instance: 'report', current: run(1, cur, 'b'.repeat(64)) as never, changes: [] });
    expect(first).toContain('No earlier run of report to compare with');
    expect(first).toMatch(/<td class="n previous none">—<\/td><td class="change none">no earlier run<\/td>/);
    const gone = await compare({ instance: 'report', current: run(3, cur, 'b'.repeat(64)) as never, previous: run(2, undefined, 'a'.repeat(64)), changes: [] });
    expect(gone).toContain('is gone from the store (smke gc)');
    expect(gone).toMatch(/<td class="change none">entry gone<\/td>/);
  });

  it('leaves report.html itself without the comparison columns', () => {
    const html = renderHtml(report([row('glue.rte', 80)]));
    expect(html).not.toMatch(/previous|class="change|compared/);
  });
});
