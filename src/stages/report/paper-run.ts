// report.paper: reads the metrics.json files it is given (by reference, so
// they are store entries), their entries' manifests and per-step metrics,
// and the evaluation data for the baselines; writes report.md, report.html
// and report.json; fails, naming the rows, when an expectation is not met.

import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Value } from '../../compiler/plan.js';
import { ImageDataset } from '../../data/image-dataset.js';
import { TextTasks } from '../../data/text-tasks.js';
import type { StageContext } from '../stage-kind.js';
import type { ReportPaperParams } from './paper.js';
import { applyExpectations, TABLES, type Curve, type Provenance, type Report, type Row } from './model.js';
import { PUBLISHED, PUBLISHED_ABLATION_NOTE } from './published.js';
import { renderHtml, renderMarkdown } from './render-report.js';

type Metrics = Record<string, number | string>;
// Defaults may be missing when a test builds a report from bare params: every map falls back to empty.
type P = ReportPaperParams;

interface Entry {
  metrics: Metrics;
  provenance: Provenance;
  /** Params of the producing stage as written (strings and numbers only are used). */
  params: Record<string, Value>;
  steps: Record<string, [number, number][]>;
}

/** The store entry holding `file`: the nearest directory above it with _smke/manifest.json. */
function entryDirOf(file: string): string | undefined {
  let d = dirname(file);
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(d, '_smke', 'manifest.json'))) return d;
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return undefined;
}

const entryCache = new Map<string, Entry>();

export function readEntry(metricsFile: string): Entry {
  const hit = entryCache.get(metricsFile);
  if (hit) return hit;
  const metrics = JSON.parse(readFileSync(metricsFile, 'utf8')) as Metrics;
  const dir = entryDirOf(metricsFile);
  let provenance: Provenance = { stage: metricsFile, key: '' };
  let params: Record<string, Value> = {};
  const steps: Record<string, [number, number][]> = {};
  if (dir) {
    const m = JSON.parse(readFileSync(join(dir, '_smke', 'manifest.json'), 'utf8')) as {
      key: string;
      instance: string;
      params: Record<string, Value>;
      timings?: { finished: string; seconds: number };
      host?: string;
    };
    params = m.params ?? {};
    let backend = typeof metrics.backend === 'string' ? metrics.backend : undefined;
    const logFile = join(dir, '_smke', 'log');
    if (!backend && existsSync(logFile)) backend = /tfjs backend: (\S+)/.exec(readFileSync(logFile, 'utf8'))?.[1];
    provenance = { stage: m.instance, key: m.key, finished: m.timings?.finished, seconds: m.timings?.seconds, backend, host: m.host };
    const jl = join(dir, '_smke', 'metrics.jsonl');
    if (existsSync(jl)) {
      for (const line of readFileSync(jl, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        let e: { name: string; value: number; step?: number };
        try {
          e = JSON.parse(line);
        } catch {
          continue; // a torn last line of a killed attempt is not a point
        }
        if (typeof e.step !== 'number' || typeof e.value !== 'number') continue;
        (steps[e.name] ??= []).push([e.step, e.value]);
      }
    }
  }
  const entry = { metrics, provenance, params, steps };
  entryCache.set(metricsFile, entry);
  return entry;
}

const num = (m: Metrics, k: string): number => {
  const v = m[k];
  return typeof v === 'number' ? v : NaN;
};

// ---- baselines computed from the evaluation data ----------------------------

/** Majority-class rate (x100) of a split's labels: the accuracy of always answering the commonest class. */
async function classMajority(dir: string, split: string): Promise<{ value: number; classes: number }> {
  const ds = await ImageDataset.open(dir, 'image-class');
  const counts = new Map<number, number>();
  const recs = await ds.records(split);
  for (const r of recs) counts.set(r.label ?? -1, (counts.get(r.label ?? -1) ?? 0) + 1);
  const top = Math.max(...counts.values());
  return { value: (100 * top) / recs.length, classes: ds.classes.length };
}

/** log C(n, k), for the random-ranking hit rates. */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s += Math.log(n - i) - Math.log(i + 1);
  return s;
}

/**
 * Expected TR@k and IR@k (x100) of a random ranking on a split: an image is a
 * hit when any of its c captions is among k drawn from M; a caption when its
 * image is among k of N.
 */
export function randomRetrieval(captionsPerImage: number[], k: number): { tr: number; ir: number } {
  const N = captionsPerImage.length,
    M = captionsPerImage.reduce((a, b) => a + b, 0);
  let tr = 0;
  for (const c of captionsPerImage) tr += k > M - c ? 1 : 1 - Math.exp(logChoose(M - c, k) - logChoose(M, k));
  return { tr: (100 * tr) / N, ir: (100 * Math.min(k, N)) / N };
}

async function pairCaptions(dir: string, split: string): Promise<number[]> {
  const ds = await ImageDataset.open(dir, 'image-text');
  return (await ds.records(split)).map((r) => r.captions?.length ?? 0).filter((c) => c > 0);
}

/**
 * Best constant-prediction value (x100) of a GLUE task's headline metric on its
 * eval split, with `se`: the standard error (x100) of that metric for a model
 * with no signal on a split of this size (sqrt(p(1-p)/n) for accuracy and F1 at
 * the baseline rate, 1/sqrt(n-1) for a correlation around 0), so "two standard
 * errors above the baseline" is a band the data decide.
 */
export async function glueBaseline(tasksDir: string, task: string): Promise<{ value: number; kind: string; se: number; n: number } | undefined> {
  const tasks = await TextTasks.open(tasksDir);
  if (!tasks.names.includes(task)) return undefined;
  const spec = tasks.spec(task);
  const ex = (await tasks.examples(task, spec.eval_split)).filter((e) => e.label !== -1);
  const n = ex.length;
  if (!n) return undefined;
  const corrSe = 100 / Math.sqrt(Math.max(1, n - 1));
  if (spec.metric === 'matthews') return { value: 0, kind: 'constant', se: corrSe, n };
  if (spec.metric === 'spearman' || spec.metric === 'pearson') return { value: 0, kind: 'random', se: corrSe, n };
  const counts = new Map<number, number>();
  for (const e of ex) counts.set(e.label, (counts.get(e.label) ?? 0) + 1);
  const rateSe = (p: number) => 100 * Math.sqrt((p * (1 - p)) / n);
  if (spec.metric === 'f1') {
    const p = (counts.get(1) ?? 0) / n;
    return { value: (100 * 2 * p) / (1 + p), kind: 'all positive', se: rateSe(p), n };
  }
  const p = Math.max(...counts.values()) / n;
  return { value: 100 * p, kind: 'majority', se: rateSe(p), n };
}

// ---- rows ---------------------------------------------------------------------

const splitOf = (e: Entry, key: string, dflt: string): string => {
  const v = e.params[key];
  return typeof v === 'string' ? v : dflt;
};

export async function buildReport(p: P, generated: string): Promise<Report> {
  const rows: Row[] = [];
  const data = p.data ?? {};
  const classify = data.classify ?? {};
  const pairs = data.pairs ?? {};
  const curveSources = new Map<string, string>();
  const row = (
    id: string,
    table: string,
    label: string,
    metric: string,
    value: number,
    e: Entry | undefined,
    baseline?: { value: number; kind: string; se?: number },
  ) => {
    rows.push({
      id,
      table,
      label,
      metric,
      value,
      baseline: baseline?.value,
      baselineKind: baseline?.kind,
      baselineSe: baseline?.se,
      published: PUBLISHED[id],
      provenance: e?.provenance,
    });
  };
  const use = (file: string | undefined): Entry | undefined => {
    if (typeof file !== 'string') return undefined;
    const e = readEntry(file);
    curveSources.set(e.provenance.stage, file);
    return e;
  };
  const zsBaseline = async (e: Entry | undefined) => {
    if (!e || typeof classify.imagenet !== 'string') return undefined;
    const m = await classMajority(classify.imagenet, splitOf(e, 'split', 'val'));
    return { value: m.value, kind: `majority of ${m.classes}` };
  };
  const retBaseline = async (set: string, e: Entry, k: number) => {
    const dir = pairs[set];
    if (typeof dir !== 'string') return undefined;
    return randomRetrieval(await pairCaptions(dir, splitOf(e, 'split', 'test')), k);
  };

  // Pretrained model.
  const pre = use(p.pretrain);
  const zs = use(p.zeroshot);
  if (zs) row('pretrained.imagenet_zs', 'pretrained', 'ImageNet zero-shot', 'top-1 %', num(zs.metrics, 'top1'), zs, await zsBaseline(zs));
  const zsr = p.zeroshot_retrieval ?? {};
  for (const set of ['coco', 'flickr']) {
    const e = use(zsr[set]);
    if (!e) continue;
    const r1 = await retBaseline(set, e, 1);
    row(
      `pretrained.${set}_r1`,
      'pretrained',
      `${set === 'coco' ? 'COCO' : 'Flickr30K'} R@1 (mean of TR@1, IR@1)`,
      'R@1',
      (num(e.metrics, 'tr1') + num(e.metrics, 'ir1')) / 2,
      e,
      r1 ? { value: (r1.tr + r1.ir) / 2, kind: 'random ranking' } : undefined,
    );
  }
  if (pre) row('pretrained.params', 'pretrained', 'S-SMKE parameters', '#params', num(pre.metrics, 'params'), pre);
  for (const set of ['coco', 'flickr']) {
    const e = use(zsr[set]);
    if (!e) continue;
    for (const dir of ['tr', 'ir'] as const) {
      for (const k of [1, 5, 10]) {
        const b = await retBaseline(set, e, k);
        row(
          `zs_retrieval.${set}.${dir}${k}`,
          'zs_retrieval',
          `${set === 'coco' ? 'COCO' : 'Flickr30K'} ${dir.toUpperCase()}@${k}`,
          `${dir.toUpperCase()}@${k}`,
          num(e.metrics, `${dir}${k}`),
          e,
          b ? { value: b[dir], kind: 'random ranking' } : undefined,
        );
      }
    }
  }

  // Image classification.
  for (const [ds, modes] of Object.entries(p.image ?? {})) {
    for (const mode of ['linear', 'finetune'] as const) {
      const e = use(modes[mode]);
      if (!e) continue;
      let base: { value: number; kind: string } | undefined;
      const images = classify[ds];
      if (typeof images === 'string') {
        const m = await classMajority(images, splitOf(e, 'val_split', 'val'));
        base = { value: m.value, kind: `majority of ${m.classes}` };
      }
      row(`image.${ds}.${mode}`, 'image', `${ds} ${mode === 'linear' ? 'linear eval' : 'finetune'}`, 'top-1 %', num(e.metrics, 'accuracy'), e, base);
    }
  }

  // GLUE.
  const glue = p.glue ?? [];
  for (const f of glue) {
    const e = use(f);
    if (!e) continue;
    const task = String(e.metrics.task ?? '');
    const metric = String(e.metrics.metric ?? 'score');
    const base = typeof data.tasks === 'string' ? await glueBaseline(data.tasks, task) : undefined;
    row(`glue.${task}`, 'glue', task.toUpperCase(), `${metric} x100`, num(e.metrics, 'score'), e, base);
  }

  // Retrieval finetune.
  for (const [set, f] of Object.entries(p.retrieval ?? {})) {
    const e = use(f);
    if (!e) continue;
    for (const dir of ['tr', 'ir'] as const) {
      const b = await retBaseline(set, e, 1);
      row(
        `retrieval.${set}.${dir}1`,
        'retrieval',
        `${set === 'coco' ? 'COCO' : set === 'flickr' ? 'Flickr30K' : set} ${dir.toUpperCase()}@1`,
        `${dir.toUpperCase()}@1`,
        num(e.metrics, `${dir}1`),
        e,
        b ? { value: b[dir], kind: 'random ranking' } : undefined,
      );
    }
  }

  // Ablation: each variant's pretraining and evaluations, side by side.
  const arms: ClaimArm[] = [];
  for (const [variant, v] of Object.entries(p.ablation ?? {})) {
    const tr = use(v.pretrain);
    const z = use(v.zeroshot);
    const c = use(v.coco);
    if (tr && z && c)
      arms.push({ variant, init: String(tr.params.init ?? 'pretrained'), bank: String(tr.params.bank_size ?? 'default'), zs: z.metrics, coco: c.metrics });
    if (z) row(`ablation.${variant}.imagenet_zs`, 'ablation', variant, 'ImageNet zero-shot top-1 %', num(z.metrics, 'top1'), z, await zsBaseline(z));
    if (c) {
      const r1 = await retBaseline('coco', c, 1);
      row(
        `ablation.${variant}.coco_r1`,
        'ablation',
        variant,
        'COCO R@1 (mean)',
        (num(c.metrics, 'tr1') + num(c.metrics, 'ir1')) / 2,
        c,
        r1 ? { value: (r1.tr + r1.ir) / 2, kind: 'random ranking' } : undefined,
      );
    }
    if (tr) {
      row(`ablation.${variant}.val_kd_accuracy`, 'ablation', variant, 'val in-batch KD accuracy %', num(tr.metrics, 'val_kd_accuracy'), tr, {
        value: 100 / Math.max(1, num(tr.params as Metrics, 'batch_size') || 32),
        kind: '1/batch',
      });
      row(`ablation.${variant}.val_loss`, 'ablation', variant, 'final val loss', num(tr.metrics, 'val_loss'), tr);
    }
  }

  const claim = initClaim(arms);
  if (claim) rows.push(claim);

  // Curves: every training stage that fed a row, the extra ones named in
  // `curves`, and every stage upstream of those in the store (the unimodal
  // models behind the pretraining), found through the manifests.
  for (const [label, f] of Object.entries(p.curves ?? {})) curveSources.set(label, f);
  const seen = new Set<string>();
  const queue = [...curveSources.values()];
  while (queue.length) {
    const f = queue.shift()!;
    const dir = entryDirOf(f);
    if (!dir || seen.has(dir)) continue;
    seen.add(dir);
    const m = JSON.parse(readFileSync(join(dir, '_smke', 'manifest.json'), 'utf8')) as { upstream?: Record<string, string> };
    for (const [inst, key] of Object.entries(m.upstream ?? {})) {
      const up = join(dirname(dir), key);
      if (!existsSync(join(up, '_smke', 'manifest.json')) || seen.has(up)) continue;
      // The entry's metrics.json may not exist (data stages): the manifest path stands in for it.
      const probe = existsSync(join(up, 'metrics.json')) ? join(up, 'metrics.json') : undefined;
      if (probe && ![...curveSources.values()].includes(probe)) curveSources.set(inst, probe);
      queue.push(probe ?? join(up, '_smke', 'manifest.json'));
    }
  }
  const curves: Curve[] = [];
  for (const [label, f] of curveSources) {
    const e = readEntry(f);
    const loss: Curve['loss'] = {},
      accuracy: Curve['accuracy'] = {};
    for (const [name, pts] of Object.entries(e.steps)) {
      if (pts.length < 2 && !name.startsWith('val_') && !name.startsWith('eval_')) continue;
      if (/(^|_)loss/.test(name)) loss[name] = pts;
      else if (/acc|^eval_|^val_(f1|matthews|spearman|pearson)/i.test(name)) accuracy[name] = pts;
    }
    if (Object.keys(loss).length || Object.keys(accuracy).length) curves.push({ label, loss, accuracy });
  }

  const tables = TABLES.map((t) =>
    t.id === 'ablation'
      ? {
          ...t,
          note: `Variants of train.s_smke at the same number of steps, evaluated the same way. ${ablationDeltas(rows)}Each variant's seed derives from its cache key, so differences within seed noise mean nothing. ${PUBLISHED_ABLATION_NOTE}`,
        }
      : t,
  );
  const report: Report = { title: String(p.title ?? 'S-SMKE'), scale: String(p.scale ?? ''), generated, tables, rows, curves, failures: [] };
  report.failures = applyExpectations(rows, p.expect ?? {});
  return report;
}

/** An ablation variant with what the init claim needs: its init, bank size and evaluation metrics. */
export interface ClaimArm {
  variant: string;
  init: string;
  /** bank_size as the stage was given it ('default' when left out). */
  bank: string;
  zs: Metrics;
  coco: Metrics;
}

/** Standard error (x100) of a rate given x100 on n trials. */
const rateSe = (pct: number, n: number) => 100 * Math.sqrt(Math.max(0, (pct / 100) * (1 - pct / 100)) / Math.max(1, n));

/**
 * The paper's claim as a verdict row: S-SMKE from the pretrained unimodal
 * encoders beats S-SMKE from random initialisation (same bank size and
 * steps) on zero-shot top-1 and COCO R@1, each by more than two standard
 * errors of the difference as the evaluation sets' sizes allow (binomial;
 * R@1 is the mean of TR@1 over images and IR@1 over captions). One run
 * cannot show seed-to-seed spread: bench/mini-ablation.mjs runs seeds.
 */
export function initClaim(arms: ClaimArm[]): Row | undefined {
  const random = arms.find((a) => a.init === 'random');
  const pre = random && arms.find((a) => a.init === 'pretrained' && a.bank === random.bank);
  if (!random || !pre) return undefined;
  const zs = (a: ClaimArm) => ({ v: num(a.zs, 'top1'), se: rateSe(num(a.zs, 'top1'), num(a.zs, 'images')) });
  const r1 = (a: ClaimArm) => ({
    v: (num(a.coco, 'tr1') + num(a.coco, 'ir1')) / 2,
    se: 0.5 * Math.hypot(rateSe(num(a.coco, 'tr1'), num(a.coco, 'images')), rateSe(num(a.coco, 'ir1'), num(a.coco, 'captions'))),
  });
  const parts: string[] = [];
  let held = true;
  for (const [name, f] of [
    ['zero-shot top-1', zs],
    ['COCO R@1', r1],
  ] as const) {
    const a = f(pre),
      b = f(random);
    const d = a.v - b.v,
      se = Math.hypot(a.se, b.se);
    if (!(d > 2 * se)) held = false;
    parts.push(`${name} ${d >= 0 ? '+' : ''}${d.toFixed(1)} (2 se ${(2 * se).toFixed(1)})`);
  }
  return {
    id: 'ablation.claim',
    table: 'ablation',
    label: `pretrained init > random init (${pre.variant} vs ${random.variant})`,
    metric: 'both by > 2 se',
    value: held ? 1 : 0,
    text: `${held ? 'held' : 'not held'}: ${parts.join(', ')}`,
  };
}

/** "Against pretrained_bank: random_init ImageNet zero-shot -1.0, ..." from the ablation rows (the first variant is the reference). */
export function ablationDeltas(rows: Row[]): string {
  const ab = rows.filter((r) => r.table === 'ablation' && r.id.split('.').length === 3);
  const variants = [...new Set(ab.map((r) => r.id.split('.')[1]!))];
  if (variants.length < 2) return '';
  const ref = variants[0]!;
  const val = (v: string, m: string) => ab.find((r) => r.id === `ablation.${v}.${m}`)?.value;
  const parts: string[] = [];
  for (const v of variants.slice(1)) {
    const ds: string[] = [];
    for (const [m, name] of [
      ['imagenet_zs', 'ImageNet zero-shot'],
      ['coco_r1', 'COCO R@1'],
      ['val_kd_accuracy', 'val KD accuracy'],
    ] as const) {
      const a = val(v, m),
        b = val(ref, m);
      if (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b)) ds.push(`${name} ${a - b >= 0 ? '+' : ''}${(a - b).toFixed(1)}`);
    }
    if (ds.length) parts.push(`${v}: ${ds.join(', ')}`);
  }
  return parts.length ? `Against ${ref}: ${parts.join('; ')}. ` : '';
}

export async function runReport(ctx: StageContext, p: P): Promise<void> {
  const report = await buildReport(p, new Date().toISOString());
  const md = renderMarkdown(report);
  await writeFile(join(ctx.outDir, 'report.md'), md);
  await writeFile(join(ctx.outDir, 'report.html'), renderHtml(report));
  await writeFile(join(ctx.outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  const checked = report.rows.filter((r) => r.ok !== undefined).length;
  ctx.metric('rows', report.rows.length);
  ctx.metric('expectations_failed', report.failures.length);
  if (report.failures.length) {
    // A failed stage publishes nothing: the tables go to the log so the reader still sees them.
    ctx.log.error(md);
    throw new Error(`${report.failures.length} of ${Object.keys(p.expect ?? {}).length} expectation(s) failed:\n  ${report.failures.join('\n  ')}`);
  }
  ctx.log.info(`${report.rows.length} rows, ${checked} expectations met, ${report.curves.length} training curves`);
}
