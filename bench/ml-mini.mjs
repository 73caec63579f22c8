#!/usr/bin/env node
// The whole mini profile's ML work at the kinds' defaults, stage by stage:
// wall time of each and its final metrics. Tells whether mini fits its
// budget (~15 minutes on 2 cores) and what the mini model reaches.
// Usage: npm run build && nice node bench/ml-mini.mjs [workdir]
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { generateSynthetic } from '../dist/data/synthetic/index.js';
import { kinds as mlKinds } from '../dist/stages/ml/index.js';
import { kinds as evalKinds } from '../dist/stages/eval/index.js';

const work = process.argv[2] ?? join('bench', 'out', 'ml-mini');
const kinds = new Map([...mlKinds, ...evalKinds].map((k) => [k.name, k]));
const ajv = new Ajv({ useDefaults: true, strict: false });
const rows = [];

async function stage(name, kindName, params) {
  const kind = kinds.get(kindName);
  const p = structuredClone(params);
  if (!ajv.compile(kind.params)(p)) throw new Error(`${name}: bad params`);
  const outDir = join(work, name, 'out'), scratchDir = join(work, name, 'scratch');
  mkdirSync(outDir, { recursive: true });
  mkdirSync(scratchDir, { recursive: true });
  const ctx = {
    instance: name, stage: name, key: name, outDir, scratchDir, projectDir: work, attempt: 1, seed: 42,
    resources: { cpus: 2, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
    backend: process.env.SMKE_BACKEND || undefined,
    log: { debug() {}, info: (m) => console.log(`  [${name}] ${m}`), warn: (m) => console.log(`  [${name}] warn ${m}`), error: (m) => console.log(`  [${name}] error ${m}`) },
    progress() {}, metric() {}, signal: new AbortController().signal,
  };
  const t0 = performance.now();
  await kind.run(ctx, p);
  const s = (performance.now() - t0) / 1000;
  const m = JSON.parse(readFileSync(join(outDir, 'metrics.json'), 'utf8'));
  rows.push({ name, s, m });
  console.log(`${name.padEnd(16)} ${s.toFixed(1).padStart(7)} s  ${JSON.stringify(m)}`);
  return outDir;
}

const t0 = performance.now();
const syn = join(work, 'synthetic');
await generateSynthetic(syn, { seed: 42 });
console.log(`data.synthetic   ${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s`);
const teacher = join(await stage('teacher', 'train.teacher', { images: join(syn, 'classify') }), 'model');
const image = join(await stage('image_encoder', 'train.image_encoder', { images: join(syn, 'coco') }), 'model');
const text = join(await stage('mlm', 'train.mlm', { corpus: join(syn, 'corpus') }), 'model');
const smke = join(await stage('s_smke', 'train.s_smke', { pairs: [join(syn, 'coco'), join(syn, 'flickr')], teacher, image_encoder: image, text_encoder: text }), 'model');
await stage('zeroshot', 'eval.zeroshot', { model: smke, images: join(syn, 'classify') });
await stage('ret_coco', 'eval.retrieval', { model: smke, pairs: join(syn, 'coco') });
await stage('ret_flickr', 'eval.retrieval', { model: smke, pairs: join(syn, 'flickr') });
await stage('img_linear', 'finetune.image', { model: smke, images: join(syn, 'classify'), mode: 'linear' });
await stage('img_full', 'finetune.image', { model: smke, images: join(syn, 'classify'), mode: 'full' });
for (const task of ['cola', 'sst2', 'mrpc', 'qqp', 'stsb', 'mnli', 'qnli', 'rte', 'wnli']) await stage(`glue_${task}`, 'finetune.text', { model: smke, tasks: join(syn, 'glue'), task });
const ft = join(await stage('ret_ft', 'finetune.retrieval', { model: smke, pairs: join(syn, 'coco') }), 'model');
await stage('ret_ft_coco', 'eval.retrieval', { model: ft, pairs: join(syn, 'coco') });
console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
