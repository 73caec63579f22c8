#!/usr/bin/env node
// Diagnoses the GLUE-like pair tasks before any tuning (docs/ml.md, "fourth attempt"):
//  1. fit: finetune.text on a small training set evaluated on that same set, so the
//     score is the training fit; a model that cannot fit a few hundred examples has
//     a bug (or a task whose label the input does not carry), not a budget problem.
//  2. learnable: a logistic regression on hand features of the pair written from
//     the task definitions (words in both sentences, words in one only), trained on
//     the training split and scored on the eval split: whether the labels can be
//     learned from the text as given, independent of src/ml.
// Usage: npm run build && nice node bench/glue-diagnose.mjs [--tasks mrpc,qqp,stsb] [--fit-n 256]
//          [--steps 300] [--lr 1e-3] [--model DIR] [--work DIR]
// --model defaults to the train.mlm encoder bench/glue-text.mjs trains (run it first).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runStage } from './lib/stage-runner.mjs';
import { kinds as mlKinds } from '../dist/stages/ml/index.js';
import { TextTasks, TextTasksWriter } from '../dist/data/text-tasks.js';
import { taskMetric } from '../dist/stages/ml/finetune-run.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const tasks = arg('tasks', 'mrpc,qqp,stsb').split(',');
const fitN = Number(arg('fit-n', 256));
const steps = Number(arg('steps', 300));
const lr = Number(arg('lr', 1e-3));
const base = join('bench', 'out', 'glue-text');
const work = arg('work', join('bench', 'out', 'glue-diagnose'));
const model = arg('model', join(base, 'mlm-200', 'out', 'model'));
const glue = arg('glue', join(base, 'synthetic', 'glue'));
const skipFit = process.argv.includes('--no-fit');
const kinds = new Map(mlKinds.map((k) => [k.name, k]));
const src = await TextTasks.open(glue);

// ---- 2. logistic regression on pair features --------------------------------
const words = (s) => s.split(/\s+/).filter(Boolean);
/** Sparse features: "both:w" for a word in both sentences, "one:w" for a word in exactly one, and their counts. */
function features(ex) {
  const a = new Set(words(ex.text)),
    b = new Set(words(ex.text_pair ?? ''));
  const f = new Map();
  let both = 0,
    one = 0;
  for (const w of new Set([...a, ...b])) {
    if (a.has(w) && b.has(w)) {
      f.set(`both:${w}`, 1);
      both++;
    } else {
      f.set(`one:${w}`, 1);
      one++;
    }
  }
  f.set('n_both', both / 5);
  f.set('n_one', one / 5);
  f.set('bias', 1);
  return f;
}
/** Full-batch gradient descent on the logistic (or squared, for regression) loss with a little L2. */
function fitLinear(xs, ys, regression) {
  const w = new Map();
  const dot = (f) => {
    let s = 0;
    for (const [k, v] of f) s += (w.get(k) ?? 0) * v;
    return s;
  };
  const lrate = regression ? 0.05 : 0.5;
  for (let epoch = 0; epoch < 300; epoch++) {
    const g = new Map();
    for (let i = 0; i < xs.length; i++) {
      const z = dot(xs[i]);
      const err = regression ? z - ys[i] : 1 / (1 + Math.exp(-z)) - ys[i];
      for (const [k, v] of xs[i]) g.set(k, (g.get(k) ?? 0) + err * v);
    }
    for (const [k, gk] of g) w.set(k, (w.get(k) ?? 0) - lrate * (gk / xs.length + 1e-4 * (w.get(k) ?? 0)));
  }
  return dot;
}

const rows = [];
for (const task of tasks) {
  const spec = src.spec(task);
  const regression = spec.problem === 'regression';
  const train = await src.examples(task, 'train');
  const evalEx = await src.examples(task, spec.eval_split);
  const score = fitLinear(
    train.map(features),
    train.map((e) => e.label),
    regression,
  );
  const pred = (xs) => xs.map((e) => (regression ? score(features(e)) : score(features(e)) > 0 ? 1 : 0));
  const lin = {
    train:
      taskMetric(
        spec.metric,
        pred(train),
        train.map((e) => e.label),
      ) * 100,
    eval:
      taskMetric(
        spec.metric,
        pred(evalEx),
        evalEx.map((e) => e.label),
      ) * 100,
  };
  // ---- 1. training-set fit of finetune.text --------------------------------
  let fit;
  if (!skipFit) {
    const dir = join(work, `fit-${task}-n${fitN}`);
    if (!existsSync(join(dir, 'dataset.json'))) {
      mkdirSync(dir, { recursive: true });
      const w = new TextTasksWriter(dir, `fit-${task}`, glue);
      const { splits: _s, ...rest } = spec;
      const head = train.slice(0, fitN);
      await w.addTask(task, { ...rest, eval_split: 'validation' }, { train: head, validation: head });
      await w.finish();
    }
    const tag = `fit-${task}-n${fitN}-s${steps}-lr${lr}`;
    const r = await runStage({
      kinds,
      dir: work,
      projectDir: work,
      name: tag,
      kind: 'finetune.text',
      params: { model, tasks: dir, task, steps, lr },
      seed: 42,
    });
    fit = r.m;
    console.log(`  ${tag}: train-set ${spec.metric} ${fit.score.toFixed(1)}, final loss ${fit.loss.toFixed(3)}`);
  }
  rows.push({ task, metric: spec.metric, lin, fit });
}
const out = [
  `## GLUE-like pair tasks: can the labels be learned, can finetune.text fit them (${fitN} examples, ${steps} steps, lr ${lr})`,
  '',
  '| task | metric | overlap features, logistic/linear: train | eval | finetune.text fit on its own training set | final loss |',
  '|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.task} | ${r.metric} | ${r.lin.train.toFixed(1)} | ${r.lin.eval.toFixed(1)} | ${r.fit ? r.fit.score.toFixed(1) : ''} | ${r.fit ? r.fit.loss.toFixed(3) : ''} |`,
  ),
];
console.log(out.join('\n'));
