// The report compared with the previous run, end to end through bin/smke.js:
// a tiny pipeline of exec stages that write GLUE-shaped metrics and a text-task
// evaluation set, and a report.paper stage. `smke run` writes
// results/report.compare.html outside the store; its two columns are checked
// against values computed here from the two runs' own metrics.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempProject } from '../runtime/helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-compare-');
});
afterEach(() => proj.cleanup());

function smke(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: proj.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// A text-task set with 100 RTE examples, half positive: majority 50, se = 100 sqrt(.5 .5 / 100) = 5.
const MAKE_TASKS = `import { mkdirSync, writeFileSync } from 'node:fs';
const out = process.argv[2] + '/glue';
const spec = { input: 'pair', problem: 'classification', labels: ['0', '1'], metric: 'accuracy', metrics: ['accuracy'], splits: { validation: 100 }, eval_split: 'validation' };
mkdirSync(out + '/rte', { recursive: true });
mkdirSync(out + '/sst2', { recursive: true });
writeFileSync(out + '/dataset.json', JSON.stringify({ format: 'smke-dataset', version: 1, source: 'test', type: 'text-tasks', name: 'glue', tasks: { rte: spec, sst2: spec } }));
const rows = (n) => Array.from({ length: 100 }, (_, i) => JSON.stringify({ idx: i, text: 'x', text_b: 'y', label: i < n ? 1 : 0 })).join('\\n') + '\\n';
writeFileSync(out + '/rte/validation.jsonl', rows(50));
writeFileSync(out + '/sst2/validation.jsonl', rows(50));
`;
const SCORE = `import { writeFileSync } from 'node:fs';
const [out, task, score] = process.argv.slice(2);
writeFileSync(out + '/metrics.json', JSON.stringify({ task, metric: 'accuracy', score: Number(score) }));
`;
const PIPELINE = `smke 1
param rte_score = 60
param sst2_score = 80

stage tasks = exec {
  argv = ["node", "tasks.mjs", "{out}"]
  inputs = ["tasks.mjs"]
  outputs = { dir = "glue" }
}
stage rte = exec {
  argv = ["node", "score.mjs", "{out}", "rte", "\${rte_score}"]
  inputs = ["score.mjs"]
  outputs = { metrics = "metrics.json" }
  metrics = "metrics.json"
}
stage sst2 = exec {
  argv = ["node", "score.mjs", "{out}", "sst2", "\${sst2_score}"]
  inputs = ["score.mjs"]
  outputs = { metrics = "metrics.json" }
  metrics = "metrics.json"
}
stage report = report.paper {
  title = "Tiny"
  glue = [rte.metrics, sst2.metrics]
  data = { tasks = tasks.dir }
}
`;

/** The comparison cells of one row of a page: previous value, change (as data attributes), and the change cell's text. */
function cells(html: string, row: string) {
  const tr = new RegExp(`<tr id="row-${row.replace('.', '\\.')}"[^>]*>(.*?)</tr>`).exec(html)?.[1];
  if (!tr) throw new Error(`no row ${row} in the page`);
  const prev = /<td class="n previous[^"]*"(?: data-previous="([^"]*)")?>([^<]*)<\/td>/.exec(tr)!;
  const change = /<td class="change ([^"]*)"((?: data-[a-z-]+="[^"]*")*)>(.*?)<\/td>/.exec(tr)!;
  const attr = (name: string) => new RegExp(`data-${name}="([^"]*)"`).exec(change[2]!)?.[1];
  return {
    previous: prev[1] === undefined ? undefined : Number(prev[1]),
    previousText: prev[2],
    changeClass: change[1],
    delta: attr('delta') === undefined ? undefined : Number(attr('delta')),
    beyondNoise: attr('beyond-noise'),
    changeText: change[3]!.replace(/<[^>]+>/g, ''),
  };
}

const score = (instance: string): number => (JSON.parse(readFileSync(join(proj.dir, 'results', instance, 'metrics.json'), 'utf8')) as { score: number }).score;

describe('the report compared with the previous run', () => {
  it('says a first run has nothing to compare with, keeps the page on an unchanged run, and shows the previous value and the change after a change', () => {
    writeFileSync(join(proj.dir, 'tasks.mjs'), MAKE_TASKS);
    writeFileSync(join(proj.dir, 'score.mjs'), SCORE);
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    const page = join(proj.dir, 'results', 'report.compare.html');

    const r1 = smke(['run', 'p.smke', '--progress', 'plain']);
    expect(r1.code, r1.err).toBe(0);
    expect(r1.out).toContain('compared report: no earlier run to compare with yet: results/report.compare.html');
    const first = readFileSync(page, 'utf8');
    expect(first).toContain('No earlier run of report to compare with');
    expect(cells(first, 'glue.rte')).toMatchObject({ previous: undefined, previousText: '—', changeText: 'no earlier run' });
    const rte1 = score('rte');
    const sst1 = score('sst2');

    // The same pipeline again: nothing changed, nothing is rewritten.
    const r2 = smke(['run', 'p.smke', '--progress', 'plain', '--no-plan-cache']);
    expect(r2.code, r2.err).toBe(0);
    expect(r2.out).not.toContain('compared report');
    expect(readFileSync(page, 'utf8')).toBe(first);

    const r3 = smke(['run', 'p.smke', '--progress', 'plain', '--set', 'rte_score=80']);
    expect(r3.code, r3.err).toBe(0);
    expect(r3.out).toContain('compared report with run 2: results/report.compare.html');
    const html = readFileSync(page, 'utf8');
    expect(html).toContain('<th>previous run (run 2)</th><th>change</th>');
    expect(html).toMatch(/Differs between the runs: rte: param argv\[4\]: .*60.* -&gt; .*80/);
    const rte = cells(html, 'glue.rte');
    expect(rte.previous).toBe(rte1);
    expect(rte.delta).toBe(score('rte') - rte1);
    expect(rte.changeClass).toBe('changed up');
    // se 5 on 100 examples at p = .5: 2 se of a difference = 2 sqrt(2) 5 = 14.1 < 20.
    expect(rte.beyondNoise).toBe('true');
    expect(rte.changeText).toBe('+20.0 beyond noise (2 se of a difference: 14.1)');
    const sst = cells(html, 'glue.sst2');
    expect(sst).toMatchObject({ previous: sst1, delta: 0, changeClass: 'same', changeText: 'no change' });
    expect(score('sst2')).toBe(sst1);

    // The report in the store is the report of its key: no comparison in it, and nothing else was written there.
    const entry = realpathSync(join(proj.dir, 'results', 'report'));
    expect(readFileSync(join(entry, 'report.html'), 'utf8')).not.toContain('change</th>');
    expect(readdirSync(entry).sort()).toEqual(['_smke', 'report.html', 'report.json', 'report.md']);
    expect(statSync(page).isFile()).toBe(true);

    // smke diff draws the same page for any two runs.
    const d = smke(['diff', '1', '3', '--html', 'cmp.html']);
    expect(d.code, d.err).toBe(0);
    const diffPage = readFileSync(join(proj.dir, 'cmp.html'), 'utf8');
    expect(cells(diffPage, 'glue.rte')).toMatchObject({ previous: rte1, delta: 20 });
    expect(diffPage).toContain('Tiny, compared with run 1');
    expect(existsSync(join(proj.dir, 'cmp.html'))).toBe(true);
  }, 120_000);
});
