import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StageContext } from '../../src/stages/stage-kind.js';
import { registry } from '../../src/stages/registry.js';
import { applyExpectations, inBand, BandError, type Row } from '../../src/stages/report/model.js';
import { buildReport, initClaim, randomRetrieval, type ClaimArm } from '../../src/stages/report/paper-run.js';
import { renderHtml, renderMarkdown, svgPlot } from '../../src/stages/report/render-report.js';
import { makeFixture, type Fixture } from './fixtures.js';

let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});
afterAll(() => fx.cleanup());

const byId = (rows: Row[], id: string): Row => {
  const r = rows.find((x) => x.id === id);
  if (!r) throw new Error(`no row ${id} in ${rows.map((x) => x.id).join(', ')}`);
  return r;
};

function ctxFor(outDir: string): StageContext & { logs: string[] } {
  const logs: string[] = [];
  return {
    instance: 'report',
    stage: 'report',
    key: 'k',
    outDir,
    scratchDir: outDir,
    projectDir: outDir,
    attempt: 1,
    seed: 1,
    resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] } as never,
    log: { debug: (m) => logs.push(m), info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) },
    progress() {},
    metric() {},
    signal: new AbortController().signal,
    logs,
  };
}

describe('bands', () => {
  it('reads comparisons, ranges and chance-relative bounds', () => {
    expect(inBand('>= 60', 60)).toBe(true);
    expect(inBand('> 60', 60)).toBe(false);
    expect(inBand('<= 5', 4.9)).toBe(true);
    expect(inBand('< 5', 5)).toBe(false);
    expect(inBand('40..90', 40)).toBe(true);
    expect(inBand('40..90', 90.1)).toBe(false);
    expect(inBand('>= chance + 10', 35, 25)).toBe(true);
    expect(inBand('>= chance + 10', 34.9, 25)).toBe(false);
    expect(inBand('> chance * 2', 51, 25)).toBe(true);
    expect(inBand('chance..chance + 5', 27, 25)).toBe(true);
    expect(() => inBand('about 60', 60)).toThrow(BandError);
    expect(() => inBand('>= chance', 60)).toThrow(/no chance baseline/);
  });

  it('names the rows outside their band, and an expectation on a row that does not exist', () => {
    const rows: Row[] = [
      { id: 'glue.sst2', table: 'glue', label: 'SST2', metric: 'accuracy x100', value: 55, baseline: 50 },
      { id: 'glue.cola', table: 'glue', label: 'COLA', metric: 'matthews x100', value: 20, baseline: 0 },
    ];
    const failures = applyExpectations(rows, { 'glue.sst2': '>= 60', 'glue.cola': '> chance', 'glue.stsb': '>= 0' });
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatch(/^glue\.sst2 \(SST2, accuracy x100\) = 55.0 is outside its band '>= 60' \(chance 50.0\)/);
    expect(failures[1]).toMatch(/expect 'glue\.stsb': no such row .*glue\.sst2, glue\.cola/);
    expect(rows[0]!.ok).toBe(false);
    expect(rows[1]!.ok).toBe(true);
  });
});

describe('standard-error bands and the init claim', () => {
  it("reads `chance + N se` with the row's standard error, and refuses it without one", () => {
    // MCC baseline 0 with se 5 (about 1/sqrt(n-1) for n = 401): two se = 10.
    expect(inBand('> chance + 2 se', 10.1, 0, 5)).toBe(true);
    expect(inBand('> chance + 2 se', 10, 0, 5)).toBe(false);
    expect(inBand('>= chance + 1.5se', 57.5, 50, 5)).toBe(true);
    expect(inBand('chance - 1 se..chance + 1 se', 46, 50, 5)).toBe(true);
    expect(inBand('> chance + 2', 52.5, 50, 5)).toBe(true); // a plain number is not scaled
    expect(() => inBand('> chance + 2 se', 60, 50)).toThrow(/no standard error/);
    expect(() => inBand('> chance * 2 se', 60, 50, 5)).toThrow(BandError);
    const rows: Row[] = [{ id: 'glue.wnli', table: 'glue', label: 'WNLI', metric: 'accuracy x100', value: 56, baseline: 52, baselineSe: 3.5 }];
    expect(applyExpectations(rows, { 'glue.wnli': '> chance + 2 se' })[0]).toMatch(/= 56.0 is outside its band '> chance \+ 2 se' \(chance 52.0, se 3.5\)/);
  });

  const arm = (variant: string, init: string, zs: number, tr1: number, ir1: number, bank = '1024'): ClaimArm => ({
    variant,
    init,
    bank,
    zs: { top1: zs, images: 500 },
    coco: { tr1, ir1, images: 250, captions: 1250 },
  });

  it('holds when pretrained beats random on both metrics by more than two standard errors of the difference', () => {
    // se(zs) at 40% and 30% on 500 images: 2.19 and 2.05 -> 2 se of the difference 6.0.
    const held = initClaim([
      arm('pretrained_bank', 'pretrained', 40, 20, 10),
      arm('random_init', 'random', 30, 10, 5),
      arm('no_bank', 'pretrained', 90, 90, 90, '0'),
    ])!;
    expect(held.id).toBe('ablation.claim');
    expect(held.value).toBe(1);
    expect(held.text).toMatch(/^held: zero-shot top-1 \+10.0 \(2 se 6.0\), COCO R@1 \+7.5/);
    expect(held.label).toContain('pretrained_bank vs random_init'); // the arm with the same bank, not no_bank
    // 5 points on zero-shot is inside the noise of 500 images: not held, although pretrained is ahead.
    expect(initClaim([arm('p', 'pretrained', 35, 20, 10), arm('r', 'random', 30, 10, 5)])!.text).toMatch(/^not held/);
    // Random ahead on one metric: not held.
    expect(initClaim([arm('p', 'pretrained', 40, 10, 5), arm('r', 'random', 30, 20, 10)])!.value).toBe(0);
    // No random arm, or none with a matching bank: no claim row.
    expect(initClaim([arm('p', 'pretrained', 40, 10, 5)])).toBeUndefined();
    expect(initClaim([arm('p', 'pretrained', 40, 10, 5, '0'), arm('r', 'random', 30, 20, 10)])).toBeUndefined();
  });
});

describe('baselines', () => {
  it('random ranking: TR@k from the captions per image, IR@k = k / images', () => {
    const r1 = randomRetrieval([5, 5, 5, 5], 1);
    expect(r1.tr).toBeCloseTo(25, 10); // 1 - C(15,1)/C(20,1)
    expect(r1.ir).toBeCloseTo(25, 10);
    expect(randomRetrieval([5, 5, 5, 5], 5).tr).toBeCloseTo(100 * (1 - 3003 / 15504), 8);
    expect(randomRetrieval([5, 5, 5, 5], 5).ir).toBe(100);
    expect(randomRetrieval([1, 1], 2).tr).toBe(100);
  });
});

describe('report.paper', () => {
  it('fills the tables: measured, baseline from the data, published, provenance', async () => {
    const rep = await buildReport(fx.params as never, '2026-01-01T00:00:00Z');
    const zs = byId(rep.rows, 'pretrained.imagenet_zs');
    expect(zs).toMatchObject({ value: 75, baseline: 60, baselineKind: 'majority of 4', published: 37.1 });
    expect(zs.provenance).toMatchObject({ stage: 'zeroshot', key: 'b'.repeat(64), seconds: 60, backend: 'wasm', finished: '2026-01-01T00:01:00.000Z' });
    expect(byId(rep.rows, 'pretrained.coco_r1')).toMatchObject({ value: 45, published: 44.6 });
    expect(byId(rep.rows, 'pretrained.coco_r1').baseline).toBeCloseTo(25, 10);
    expect(byId(rep.rows, 'pretrained.params')).toMatchObject({ value: 1234567, published: 117e6 });
    expect(byId(rep.rows, 'zs_retrieval.coco.ir5')).toMatchObject({ value: 80, baseline: 100, published: 66.0 });
    expect(byId(rep.rows, 'image.imagenet.linear')).toMatchObject({ value: 90, baseline: 60, published: 65.0 });
    expect(byId(rep.rows, 'glue.sst2')).toMatchObject({ value: 80, baseline: 75, baselineKind: 'majority', published: 83.5 });
    expect(byId(rep.rows, 'glue.mrpc').baseline).toBeCloseTo(40, 10); // F1 of always answering positive, 1 in 4 positive
    expect(byId(rep.rows, 'glue.cola')).toMatchObject({ baseline: 0, published: 14.2 });
    expect(byId(rep.rows, 'retrieval.coco.tr1')).toMatchObject({ value: 75, published: 56.2 });
    expect(byId(rep.rows, 'retrieval.coco.tr1').baseline).toBeCloseTo(25, 10);
    expect(byId(rep.rows, 'ablation.random_init.imagenet_zs')).toMatchObject({ value: 62, baseline: 60 });
    expect(byId(rep.rows, 'ablation.pretrained_bank.val_kd_accuracy')).toMatchObject({ value: 40, baseline: 100 / 32 });
    const s = rep.curves.find((c) => c.label === 's_smke')!;
    expect(s.loss.loss).toHaveLength(40);
    expect(s.accuracy.val_kdAcc).toEqual([
      [1, 0.1],
      [2, 0.3],
      [3, 0.4],
    ]);
    expect(rep.curves.map((c) => c.label).sort()).toEqual(['glue[sst2]', 'in1k_linear', 's_smke']);
    expect(rep.failures).toEqual([]);
    expect(rep.tables.find((t) => t.id === 'ablation')!.note).toContain('Against pretrained_bank: random_init: ImageNet zero-shot -13.0.');
  });

  it('renders every row in Markdown and HTML, curves as inline SVG', async () => {
    const rep = await buildReport(fx.params as never, 'now');
    const md = renderMarkdown(rep);
    const html = renderHtml(rep);
    for (const r of rep.rows) expect(html).toContain(`data-row="${r.id}"`);
    expect(md).toMatch(/\| ImageNet zero-shot \| top-1 % \| 75\.0 \| 60\.0 \(majority of 4\) \| 37\.1 \|/);
    expect(html.match(/<svg /g)!.length).toBeGreaterThanOrEqual(4);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    expect(svgPlot('empty', {})).toBe('');
    expect(svgPlot('one', { a: [[1, 2]] })).toContain('<circle');
  });

  it('writes its outputs, and fails naming the row when a value leaves its band', async () => {
    const kind = registry().get('report.paper')!;
    const ok = join(fx.root, 'out-ok');
    mkdirSync(ok, { recursive: true });
    await kind.run(ctxFor(ok), { ...fx.params, expect: { 'glue.sst2': '>= chance', 'pretrained.imagenet_zs': '60..80' } });
    for (const f of ['report.md', 'report.html', 'report.json']) expect(existsSync(join(ok, f))).toBe(true);
    const json = JSON.parse(readFileSync(join(ok, 'report.json'), 'utf8'));
    expect(byId(json.rows, 'glue.sst2')).toMatchObject({ expect: '>= chance', ok: true });

    const bad = join(fx.root, 'out-bad');
    mkdirSync(bad, { recursive: true });
    const ctx = ctxFor(bad);
    await expect(kind.run(ctx, { ...fx.params, expect: { 'glue.sst2': '>= 85', 'glue.cola': '> chance' } })).rejects.toThrow(
      /1 of 2 expectation\(s\) failed:\n {2}glue\.sst2 \(SST2, accuracy x100\) = 80.0 is outside its band '>= 85'/,
    );
    expect(ctx.logs.join('\n')).toContain('| SST2 | accuracy x100 | 80.0 |');
  });
});
