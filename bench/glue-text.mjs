#!/usr/bin/env node
// The text side of the mini profile on its own: the GLUE-like tasks finetuned
// from a train.mlm encoder (pretrained) and from the same kind's untrained
// model (1 step at lr 0: random init), each beside its majority/constant
// baseline and two standard errors of that baseline (the report's band
// `>= chance + 2 se`). Every stage runs through its kind, as in the pipeline;
// the data are data.synthetic's text tasks and corpus (seed 42 or --seed) with the
// image sets cut to a few images (they are not used here).
//
// Usage: npm run build && nice node bench/glue-text.mjs [--inits pretrained,random]
//          [--tasks cola,sst2,...] [--mlm-steps 200 | --model DIR] [--steps 80 | --steps mrpc=200,...]
//          [--batch 32] [--lr 1e-3 | --lr sst2=3e-3,mrpc=2e-3] [--seed 42] [--work DIR]
//          [--glue DIR] [--finetune-seeds 1,2]
// --seed draws both the data and the stages' seeds (data.synthetic seed 42 is the mini profile's).
// --glue DIR finetunes on those tasks instead (a pipeline's glue_data `tasks` output, the data its
// s_smke --model saw), and --finetune-seeds runs each finetune once per seed: the spread over
// finetune seeds on one start, beside the spread over starts.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSynthetic } from '../dist/data/synthetic/index.js';
import { runStage } from './lib/stage-runner.mjs';
import { kinds as mlKinds } from '../dist/stages/ml/index.js';
import { glueBaseline } from '../dist/stages/report/paper-run.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const ALL = ['cola', 'sst2', 'mrpc', 'qqp', 'stsb', 'mnli', 'qnli', 'rte', 'wnli'];
const tasks = arg('tasks', ALL.join(',')).split(',');
const inits = arg('inits', 'pretrained,random').split(',');
const mlmSteps = Number(arg('mlm-steps', 200));
const batch = Number(arg('batch', 32));
// The seed of the data (data.synthetic) and of every stage: --seed 7 is another draw of everything.
const seed = Number(arg('seed', 42));
// --lr 2e-3 for every task, or task=value pairs (the rest at the default); --steps alike.
const perTask = (text, dflt) => (task) => {
  if (!text.includes('=')) return Number(text);
  const pairs = Object.fromEntries(text.split(',').map((kv) => kv.split('=')));
  return Number(pairs[task] ?? dflt);
};
const lrArg = arg('lr', '1e-3');
const lrOf = perTask(lrArg, 1e-3);
const stepsArg = arg('steps', '80');
const stepsOf = perTask(stepsArg, 80);
// --adapt-steps 200 | mrpc=200,...: finetune.text's task-adaptive MLM on the task's pairs before the head
// trains (adapt_steps; 0 = off, the pipeline's default), at --adapt-lr (default: the task's lr) and
// --adapt-mask-rate (default 0.15), per task like --lr.
const adaptArg = arg('adapt-steps', '0');
const adaptOf = perTask(adaptArg, 0);
const adaptLrArg = arg('adapt-lr', undefined);
const adaptLrOf = adaptLrArg ? perTask(adaptLrArg, NaN) : () => NaN;
const adaptRateArg = arg('adapt-mask-rate', undefined);
const adaptRateOf = adaptRateArg ? perTask(adaptRateArg, NaN) : () => NaN;
// --adapt-objective electra: replaced-token detection beside the MLM (adapt_objective).
const adaptObjective = arg('adapt-objective', undefined);
const adaptPairWeight = arg('adapt-pair-weight', undefined);
const work = arg('work', join('bench', 'out', seed === 42 ? 'glue-text' : `glue-text-seed${seed}`));
const glueArg = arg('glue', undefined);
const finetuneSeeds = arg('finetune-seeds', String(seed)).split(',').map(Number);
// --model DIR: finetune this checkpoint (e.g. a pipeline's train.s_smke output) as the 'pretrained' arm.
const modelArg = arg('model', undefined);
const kinds = new Map(mlKinds.map((k) => [k.name, k]));

async function stage(name, kind, params, stageSeed = seed) {
  const r = await runStage({ kinds, dir: work, projectDir: work, name, kind, params, seed: stageSeed });
  if (r.ran) {
    const { m } = r;
    console.log(
      `  ${name.padEnd(40)} ${r.ran.wallSeconds.toFixed(1).padStart(7)} s wall ${r.ran.cpuSeconds.toFixed(1).padStart(7)} s cpu  ${m.score !== undefined ? `score ${m.score.toFixed(1)} loss ${m.loss.toFixed(3)}${m.adapt_steps ? ` adapt mlm ${m.adapt_mlm_loss_before.toFixed(2)} -> ${m.adapt_mlm_loss_after.toFixed(2)} (${m.adapt_seconds.toFixed(1)} s)` : ''}` : `loss ${m.loss.toFixed(3)}`}`,
    );
  }
  return r;
}

const syn = join(work, 'synthetic');
if (!existsSync(join(syn, 'corpus'))) {
  const tiny = { train: 4, val: 2, test: 2 };
  await generateSynthetic(syn, { seed, coco: tiny, flickr: tiny, classify: { classes: 2, trainPerClass: 2, valPerClass: 2 } });
}
const encoders = {
  pretrained: modelArg ?? join((await stage(`mlm-${mlmSteps}`, 'train.mlm', { corpus: join(syn, 'corpus'), steps: mlmSteps })).outDir, 'model'),
  random: join((await stage('mlm-untrained', 'train.mlm', { corpus: join(syn, 'corpus'), steps: 1, lr: 0 })).outDir, 'model'),
};
// Finetunes of another checkpoint (or on other tasks) are kept apart by a tag of its path.
const pathTag = (path) => `-${[...path].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7).toString(36)}`;
const modelTag = modelArg ? pathTag(modelArg) : '';
const glueDir = glueArg ?? join(syn, 'glue');
const glueTag = glueArg ? pathTag(glueArg) : '';
const rows = [];
for (const task of tasks) {
  for (const fseed of finetuneSeeds) {
    const row = { task: finetuneSeeds.length > 1 ? `${task} (finetune seed ${fseed})` : task, base: await glueBaseline(glueDir, task) };
    for (const init of inits) {
      const model = init === 'pretrained' ? encoders.pretrained : encoders.random;
      const from = init === 'pretrained' ? (modelArg ? `model${modelTag}` : `pretrained${mlmSteps}`) : init;
      const steps = stepsOf(task);
      const adapt = {};
      if (adaptOf(task) > 0) {
        adapt.adapt_steps = adaptOf(task);
        if (Number.isFinite(adaptLrOf(task))) adapt.adapt_lr = adaptLrOf(task);
        if (Number.isFinite(adaptRateOf(task))) adapt.adapt_mask_rate = adaptRateOf(task);
        if (adaptObjective) adapt.adapt_objective = adaptObjective;
        if (adaptPairWeight) adapt.adapt_pair_weight = Number(adaptPairWeight);
      }
      const adaptTag = adapt.adapt_steps
        ? `-a${adapt.adapt_steps}${adapt.adapt_lr ? `lr${adapt.adapt_lr}` : ''}${adapt.adapt_mask_rate ? `m${adapt.adapt_mask_rate}` : ''}${adaptObjective ? `-${adaptObjective}` : ''}${adaptPairWeight ? `-pw${adaptPairWeight}` : ''}`
        : '';
      const tag = `glue-${task}${glueTag}-${from}-s${steps}-b${batch}-lr${lrOf(task)}${adaptTag}${fseed === seed ? '' : `-f${fseed}`}`;
      const params = { model, tasks: glueDir, task, steps, batch_size: batch, lr: lrOf(task), ...adapt };
      row[init] = (await stage(tag, 'finetune.text', params, fseed)).m.score;
    }
    rows.push(row);
  }
}
const out = [
  `## GLUE-like tasks: ${modelArg ? `model ${modelArg}` : `MLM ${mlmSteps} steps`}, finetune ${stepsArg} steps at batch ${batch}, lr ${lrArg}, seed ${seed}${adaptArg !== '0' ? `, adapt ${adaptArg} steps (lr ${adaptLrArg ?? 'as finetune'}, mask ${adaptRateArg ?? 0.15}${adaptObjective ? `, ${adaptObjective}` : ''})` : ''}`,
  '',
  `| task | ${inits.join(' | ')} | baseline | 2 se | ${inits.map((i) => `${i} > baseline + 2 se`).join(' | ')} |`,
  `|---|${inits.map(() => '---|').join('')}---|---|${inits.map(() => '---|').join('')}`,
];
for (const r of rows) {
  const bar = r.base.value + 2 * r.base.se;
  out.push(
    `| ${r.task} | ${inits.map((i) => r[i].toFixed(1)).join(' | ')} | ${r.base.value.toFixed(1)} (${r.base.kind}) | ${(2 * r.base.se).toFixed(1)} | ${inits.map((i) => (r[i] > bar ? 'yes' : 'no')).join(' | ')} |`,
  );
}
console.log(out.join('\n'));
writeFileSync(
  join(work, `table-m${modelArg ? modelTag : mlmSteps}${glueTag}-s${stepsArg}-b${batch}${adaptArg !== '0' ? `-a${adaptArg}` : ''}.md`),
  out.join('\n') + '\n',
);
