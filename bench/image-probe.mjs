#!/usr/bin/env node
// The cheap gate before an S-SMKE run: a linear probe (finetune.image,
// mode "linear": mean-pooled patch tokens -> LN -> linear, encoder frozen) of
// image encoders on the 10 colour+shape classes of a mini-ablation work
// directory's classification set. docs/ml.md's fourth attempt: 300 steps, lr
// 1e-2, seed 42. `--pool cls` probes the CLS output instead (what S-SMKE's
// shared block starts from; the teacher's head reads it too).
//
// Usage: npm run build && nice -n 19 node bench/image-probe.mjs --models name=DIR[,name=DIR...]
//          [--images DIR] [--steps 300] [--lr 1e-2] [--seed 42] [--pool mean|cls] [--work DIR]
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { kinds as mlKinds } from '../dist/stages/ml/index.js';
import { runStage } from './lib/stage-runner.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const work = arg('work', join('bench', 'out', 'mini-ablation-pipeline'));
const images = arg('images', join(work, 'synthetic', 'classify'));
const steps = Number(arg('steps', 300));
const lr = Number(arg('lr', 1e-2));
const seed = Number(arg('seed', 42));
const pool = arg('pool', 'mean');
const models = arg('models', '')
  .split(',')
  .filter(Boolean)
  .map((m) => m.split('='));
const kinds = new Map(mlKinds.map((k) => [k.name, k]));
const rows = [];
for (const [name, model] of models) {
  const r = await runStage({
    kinds,
    dir: join(work, 'probes'),
    projectDir: work,
    name: `probe-${name}-${createHash('sha1').update(resolve(model)).digest('hex').slice(0, 8)}-s${steps}-lr${lr}-seed${seed}${pool === 'mean' ? '' : `-${pool}`}`,
    kind: 'finetune.image',
    params: { model, images, mode: 'linear', steps, lr, ...(pool === 'mean' ? {} : { pool }) },
    seed,
  });
  rows.push([name, r.m]);
  console.log(name, JSON.stringify(r.m));
}
console.log(`\n| encoder | linear probe top-1 on the ${pool === 'cls' ? 'CLS' : 'mean patch token'} (${steps} steps, lr ${lr}, seed ${seed}) |\n|---|---|`);
for (const [name, m] of rows) console.log(`| ${name} | ${Number(m.accuracy).toFixed(1)} |`);
