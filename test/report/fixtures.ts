// A small fake store and fake evaluation data for report.paper tests: store
// entries shaped as the runtime publishes them (outputs + _smke/manifest.json,
// metrics.jsonl, log), datasets in the smke dataset format. Known label
// distributions make the baselines checkable by hand.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Fixture {
  root: string;
  params: Record<string, unknown>;
  cleanup(): void;
}

function entry(
  store: string,
  key: string,
  instance: string,
  metrics: Record<string, unknown>,
  curve?: { name: string; values: number[] }[],
  params: Record<string, unknown> = {},
): string {
  const dir = join(store, key);
  mkdirSync(join(dir, '_smke'), { recursive: true });
  writeFileSync(join(dir, 'metrics.json'), JSON.stringify(metrics));
  writeFileSync(
    join(dir, '_smke', 'manifest.json'),
    JSON.stringify({
      key,
      instance,
      stage: instance.replace(/\[.*$/, ''),
      params,
      upstream: {},
      timings: { started: '2026-01-01T00:00:00.000Z', finished: '2026-01-01T00:01:00.000Z', seconds: 60 },
      host: 'h',
    }),
  );
  writeFileSync(join(dir, '_smke', 'log'), '[info] tfjs backend: wasm (skipped tensorflow-gpu)\n');
  const lines = (curve ?? []).flatMap((c) => c.values.map((v, i) => JSON.stringify({ name: c.name, value: v, step: i + 1, time: 0 })));
  writeFileSync(join(dir, '_smke', 'metrics.jsonl'), lines.join('\n') + (lines.length ? '\n' : ''));
  return join(dir, 'metrics.json');
}

function descriptor(dir: string, d: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ format: 'smke-dataset', version: 1, source: 'test', ...d }));
}

/** Image-class set: val split with 6 of class 0, 3 of class 1, 1 of class 2 (majority 60%) among 4 classes. */
function classify(dir: string): void {
  descriptor(dir, {
    type: 'image-class',
    name: 'cls',
    splits: { val: 10 },
    index: 'index.jsonl',
    storage: 'files',
    image: { format: 'png' },
    classes: ['a', 'b', 'c', 'd'],
  });
  const labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2];
  writeFileSync(join(dir, 'index.jsonl'), labels.map((l, i) => JSON.stringify({ id: `i${i}`, split: 'val', path: `i${i}.png`, label: l })).join('\n') + '\n');
}

/** Image-text set: test split of 4 images with 5 captions each. */
function pairs(dir: string): void {
  descriptor(dir, { type: 'image-text', name: 'pairs', splits: { test: 4 }, index: 'index.jsonl', storage: 'files', image: { format: 'png' } });
  const recs = [0, 1, 2, 3].map((i) => JSON.stringify({ id: `p${i}`, split: 'test', path: `p${i}.png`, captions: ['a', 'b', 'c', 'd', 'e'] }));
  writeFileSync(join(dir, 'index.jsonl'), recs.join('\n') + '\n');
}

/** Text tasks: sst2 (accuracy; 3 of 4 positive), mrpc (F1; 1 of 4 positive), cola (Matthews). */
function tasks(dir: string): void {
  const spec = (metric: string) => ({
    input: 'single',
    problem: 'classification',
    labels: ['0', '1'],
    metric,
    metrics: [metric],
    splits: { validation: 4 },
    eval_split: 'validation',
  });
  descriptor(dir, { type: 'text-tasks', name: 'glue', tasks: { sst2: spec('accuracy'), mrpc: spec('f1'), cola: spec('matthews') } });
  const write = (task: string, labels: number[]) => {
    mkdirSync(join(dir, task), { recursive: true });
    writeFileSync(join(dir, task, 'validation.jsonl'), labels.map((l, i) => JSON.stringify({ idx: i, text: 'x', label: l })).join('\n') + '\n');
  };
  write('sst2', [1, 1, 1, 0]);
  write('mrpc', [1, 0, 0, 0]);
  write('cola', [1, 0, 0, 1]);
}

export function makeFixture(): Fixture {
  const root = mkdtempSync(join(tmpdir(), 'smke-report-'));
  const store = join(root, 'store');
  const data = join(root, 'data');
  classify(join(data, 'classify'));
  pairs(join(data, 'pairs'));
  tasks(join(data, 'glue'));
  const loss = (n: number) => Array.from({ length: n }, (_, i) => 3 * Math.exp(-i / 10) + 0.1);
  const pretrain = entry(
    store,
    'a'.repeat(64),
    's_smke',
    { loss: 0.5, val_loss: 1.2, val_kd_accuracy: 40, params: 1234567, backend: 'wasm' },
    [
      { name: 'loss', values: loss(40) },
      { name: 'val_kdAcc', values: [0.1, 0.3, 0.4] },
    ],
    { batch_size: 32 },
  );
  const params = {
    title: 'Fixture report',
    scale: 'mini',
    pretrain,
    zeroshot: entry(store, 'b'.repeat(64), 'zeroshot', { top1: 75, top5: 100 }),
    zeroshot_retrieval: { coco: entry(store, 'c'.repeat(64), 'zs_coco', { tr1: 50, tr5: 75, tr10: 100, ir1: 40, ir5: 80, ir10: 100 }, [], { split: 'test' }) },
    image: {
      imagenet: {
        linear: entry(store, 'd'.repeat(64), 'in1k_linear', { accuracy: 90 }, [
          { name: 'loss', values: loss(20) },
          { name: 'val_accuracy', values: [50, 90] },
        ]),
      },
    },
    glue: [
      entry(store, 'e'.repeat(64), 'glue[sst2]', { task: 'sst2', metric: 'accuracy', score: 80 }, [{ name: 'loss', values: loss(10) }]),
      entry(store, 'f'.repeat(64), 'glue[mrpc]', { task: 'mrpc', metric: 'f1', score: 55 }),
      entry(store, '1'.repeat(64), 'glue[cola]', { task: 'cola', metric: 'matthews', score: 20 }),
    ],
    retrieval: { coco: entry(store, '2'.repeat(64), 'ret_coco', { tr1: 75, ir1: 50 }, [], { split: 'test' }) },
    ablation: {
      pretrained_bank: { pretrain, zeroshot: join(store, 'b'.repeat(64), 'metrics.json') },
      random_init: { zeroshot: entry(store, '3'.repeat(64), 'zs_scratch', { top1: 62 }) },
    },
    curves: {},
    data: { classify: { imagenet: join(data, 'classify') }, pairs: { coco: join(data, 'pairs') }, tasks: join(data, 'glue') },
    expect: {},
  };
  return { root, params, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
