#!/usr/bin/env node
// The mini profile's central claim, over several seeds: S-SMKE initialised
// from the pretrained unimodal encoders beats S-SMKE from random
// initialisation at the same number of S-SMKE steps, on zero-shot top-1 and
// COCO-like retrieval R@1 (mean of TR@1 and IR@1). Every stage is run through
// its kind with the parameters pipelines/full.smke's mini profile gives it
// (sizes below; keep them in step with the pipeline), and every stage of a
// seed (unimodal models included) runs with that seed, so the spread covers
// the whole chain. Data are generated once (seed 42, as in the pipeline).
// Optional: --glue runs the 9 GLUE-like finetunes of the pretrained model of
// each seed and prints them beside their majority/constant baselines.
//
// Usage: npm run build && nice node bench/mini-ablation.mjs [--seeds 42,1,2]
//          [--unimodal N] [--smke N] [--smke-lr X] [--mim-target pixels|norm_pix|data2vec]
//          [--mask-ratio X] [--pairs N] [--image-pool N] [--arms pretrained,random] [--only teacher,text,image]
//          [--layers K] [--text-steps N] [--untrained text|image] [--glue] [--work DIR]
//          [--profile pipeline] [--knowledge F] [--train-vocab full|paired]
//          [--mim-target simclr [--temperature T] [--view-scale S] [--view-flip] [--proj-dim P]]
//          [--image-steps N] [--image-batch B] [--val-per-class N] [--coco-test N]
// --val-per-class N / --coco-test N: larger evaluation sets (zero-shot: N images per class, default 20 at the pipeline's
// sizes; retrieval: N COCO-like test images, default 250), so that the spread over seeds is less the evaluation's own noise.
// --image-steps N / --image-batch B: the image encoder's own step count and batch size (default --unimodal and 32).
//          [--sentence W] [--sentence-temp T] [--mlm-weight W] [--sentence-mask R] [--sentence-objective infonce|decoder] [--decoder-mask R] [--hard-negatives]
// --sentence W gives the MLM a sentence-level objective beside it (train.mlm `sentence_weight`: a two-view InfoNCE
// over the CLS, temperature --sentence-temp, default 0.05, views masked at --sentence-mask, default 0.15; --mlm-weight 0 drops the MLM loss; --sentence-objective decoder: a CLS-conditioned one-block decoder of a copy masked
// at --decoder-mask, default 0.6, instead of the InfoNCE; --hard-negatives: each sentence's hard negative is itself
// with its masked tokens swapped for the MLM head's samples); its text encoder and
// the pretrained arm are named by it, the random arm (which reads only the vocabulary) is shared.
// --profile pipeline takes pipelines/full.smke's mini sizes instead of this bench's historical ones: unimodal 200
// steps (MIM norm_pix, mask 0.4), S-SMKE 200 steps at lr 5e-4 on the coco, cc3m and cc12m stand-ins' training
// pairs (seeds 42, 3, 12), a classification set of 10 classes x 50/20 images; explicit options still override.
// --knowledge F makes a share F of the MLM corpus world knowledge, --train-vocab paired restricts the pair sets'
// training captions to the paired part of the vocabulary (src/data/synthetic/language.ts, `Vocabulary`); the
// data (and so the default --work directory) differ per choice.
// --pairs N trains S-SMKE on the first N COCO-like training images (5 captions each) instead of all 2000;
// the val and test splits (S-SMKE's validation, the retrieval evaluation) stay the same 250 images.
// --image-pool N pretrains the image encoder on N unpaired COCO-like images of another seed (7) instead of
// on the paired set itself: as in the paper, where Data2Vec2 saw ImageNet and not the caption sets.
// Each model lives in a directory named by what it depends on, so runs that
// differ only in the image objective share the teacher, the text encoder and
// the random-init arm (which never reads the image encoder's weights), and
// `--only` trains chosen unimodal models (e.g. in parallel processes) first.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSynthetic } from '../dist/data/synthetic/index.js';
import { kinds as mlKinds } from '../dist/stages/ml/index.js';
import { kinds as evalKinds } from '../dist/stages/eval/index.js';
import { glueBaseline } from '../dist/stages/report/paper-run.js';
import { runStage } from './lib/stage-runner.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const seeds = arg('seeds', '42,1,2').split(',').map(Number);
const pipelineSizes = arg('profile', '') === 'pipeline';
if (arg('profile', 'pipeline') !== 'pipeline') throw new Error(`--profile: only 'pipeline' is known, got '${arg('profile')}'`);
// The bench's sizes (pipelines/full.smke's with --profile pipeline).
const MINI = {
  unimodalSteps: Number(arg('unimodal', pipelineSizes ? 200 : 600)),
  // --text-steps N: the MLM's own step count (the other unimodal models keep --unimodal).
  textSteps: Number(arg('text-steps', arg('unimodal', pipelineSizes ? 200 : 600))),
  imageSteps: Number(arg('image-steps', arg('unimodal', pipelineSizes ? 200 : 600))),
  imageBatch: Number(arg('image-batch', 32)),
  smkeSteps: Number(arg('smke', pipelineSizes ? 200 : 150)),
  mimTarget: arg('mim-target', pipelineSizes ? 'norm_pix' : 'pixels'),
  maskRatio: Number(arg('mask-ratio', 0.4)),
  pairs: Number(arg('pairs', 2000)),
  imagePool: Number(arg('image-pool', 0)),
  // --mim-target simclr: the image encoder's SimCLR settings (train.image_encoder's own defaults when not given).
  simclr: {
    ...(arg('temperature') ? { temperature: Number(arg('temperature')) } : {}),
    ...(arg('view-scale') ? { view_scale_min: Number(arg('view-scale')) } : {}),
    ...(process.argv.includes('--view-flip') ? { view_flip: true } : {}),
    ...(arg('proj-dim') ? { proj_dim: Number(arg('proj-dim')) } : {}),
  },
  smke: {
    batch_size: 32,
    lr: Number(arg('smke-lr', pipelineSizes ? 5e-4 : 1e-3)),
    layers: Number(arg('layers', 2)),
    shared_heads: 4,
    bank_size: 1024,
    val_every: 50,
  },
  glue: { steps: 150, batch_size: 32, lr: 1e-3 },
  data: {
    classify: pipelineSizes
      ? { classes: 10, trainPerClass: 50, valPerClass: Number(arg('val-per-class', 20)) }
      : { classes: 10, trainPerClass: 100, valPerClass: Number(arg('val-per-class', 50)) },
    ...(arg('coco-test') && { coco: { train: 2000, val: 250, test: Number(arg('coco-test')) } }),
    knowledgeFraction: Number(arg('knowledge', 0)),
    trainVocabulary: arg('train-vocab', 'full'),
  },
};
const SENTENCE = {
  weight: Number(arg('sentence', 0)),
  temperature: Number(arg('sentence-temp', 0.05)),
  mlm: Number(arg('mlm-weight', 1)),
  maskRate: Number(arg('sentence-mask', 0.15)),
  objective: arg('sentence-objective', 'infonce'),
  decoderMask: Number(arg('decoder-mask', 0.6)),
  hard: process.argv.includes('--hard-negatives'),
};
const sentenceTag = SENTENCE.weight
  ? `-${SENTENCE.objective === 'infonce' ? 'sim' : 'retro'}${SENTENCE.weight}${SENTENCE.temperature === 0.05 ? '' : `-tau${SENTENCE.temperature}`}${SENTENCE.mlm === 1 ? '' : `-mlm${SENTENCE.mlm}`}${SENTENCE.maskRate === 0.15 ? '' : `-vm${SENTENCE.maskRate}`}${SENTENCE.objective === 'infonce' ? '' : `-dec${SENTENCE.decoderMask}`}${SENTENCE.hard ? '-hard' : ''}`
  : '';
const sentenceParams = SENTENCE.weight
  ? {
      sentence_weight: SENTENCE.weight,
      sentence_temperature: SENTENCE.temperature,
      mlm_weight: SENTENCE.mlm,
      sentence_mask_rate: SENTENCE.maskRate,
      sentence_objective: SENTENCE.objective,
      decoder_mask_rate: SENTENCE.decoderMask,
      sentence_hard_negatives: SENTENCE.hard,
    }
  : {};
const dataTag = `${MINI.data.knowledgeFraction ? `-k${MINI.data.knowledgeFraction}` : ''}${MINI.data.trainVocabulary === 'full' ? '' : `-v${MINI.data.trainVocabulary}`}${arg('val-per-class') ? `-val${arg('val-per-class')}` : ''}${arg('coco-test') ? `-test${arg('coco-test')}` : ''}`;
const glue = process.argv.includes('--glue');
// --arms pretrained (or random) runs one arm: two processes run the arms side by side, a third prints the table.
const arms = arg('arms', 'pretrained,random').split(',');
const only = arg('only', '').split(',').filter(Boolean);
const untrained = arg('untrained', '').split(',').filter(Boolean);
const work = arg('work', join('bench', 'out', `mini-ablation${pipelineSizes ? '-pipeline' : ''}${dataTag}`));
const kinds = new Map([...mlKinds, ...evalKinds].map((k) => [k.name, k]));

async function stage(dir, name, kind, params, seed) {
  const r = await runStage({ kinds, dir, projectDir: work, name, kind, params, seed });
  if (r.ran) console.log(`  seed ${seed} ${name.padEnd(18)} ${r.ran.wallSeconds.toFixed(1).padStart(7)} s`);
  return r;
}

const syn = join(work, 'synthetic');
const { knowledgeFraction, trainVocabulary } = MINI.data;
if (!existsSync(join(syn, 'corpus'))) await generateSynthetic(syn, { seed: 42, ...MINI.data });
// A small paired set and a separate unpaired image pool are generated by the same kind's generator: the first N
// training scenes of a seed are the same whatever N, and val/test do not depend on it.
const SMALL = {
  flickr: { train: 1, val: 1, test: 1 },
  classify: { classes: 2, trainPerClass: 1, valPerClass: 1 },
  text: { train: 40, eval: 20 },
  corpusLines: 100,
};
async function pairSet(name, seed, coco) {
  const dir = join(work, name);
  if (!existsSync(join(dir, 'corpus'))) await generateSynthetic(dir, { seed, ...SMALL, coco, knowledgeFraction, trainVocabulary });
  return join(dir, 'coco');
}
const pairsDir = MINI.pairs === 2000 ? join(syn, 'coco') : await pairSet(`pairs-${MINI.pairs}`, 42, { train: MINI.pairs, val: 250, test: 250 });
const poolDir = MINI.imagePool ? await pairSet(`image-pool-${MINI.imagePool}`, 7, { train: MINI.imagePool, val: 250, test: 0 }) : pairsDir;
// The pipeline's S-SMKE reads the coco, cc3m and cc12m stand-ins (pipelines/full.smke: seeds 3 and 12, 1,000 training images each).
const webSet = { train: 1000, val: 20, test: 20 };
const pairs = pipelineSizes ? [pairsDir, await pairSet('cc3m', 3, webSet), await pairSet('cc12m', 12, webSet)] : [pairsDir];
const rows = [];
for (const seed of seeds) {
  const dir = join(work, `seed-${seed}`);
  const steps = MINI.unimodalSteps;
  const u = `u${steps}`;
  const poolTag = MINI.imagePool ? `-pool${MINI.imagePool}` : MINI.pairs === 2000 ? '' : `-p${MINI.pairs}`;
  const simclrTag = Object.entries(MINI.simclr)
    .map(([k, v]) => `-${k}${v}`)
    .join('');
  const imageTag = `${MINI.imageSteps === steps ? u : `u${MINI.imageSteps}`}${MINI.imageBatch === 32 ? '' : `-b${MINI.imageBatch}`}-${MINI.mimTarget}${MINI.maskRatio === 0.4 ? '' : `-m${MINI.maskRatio}`}${simclrTag}${poolTag}`;
  const smkeTag = `s${MINI.smkeSteps}-lr${MINI.smke.lr}${MINI.pairs === 2000 ? '' : `-p${MINI.pairs}`}${MINI.smke.layers === 2 ? '' : `-l${MINI.smke.layers}`}`;
  const unimodal = async (which, name, kind, params) => {
    if (only.length && !only.includes(which)) return undefined;
    // --untrained text (or image): that side of the pretrained arm starts from its kind's untrained model (1 step at lr 0).
    if (untrained.includes(which)) [name, params] = [`${which}-untrained`, { ...params, steps: 1, lr: 0 }];
    return join((await stage(dir, name, kind, params, seed)).outDir, 'model');
  };
  const teacher = await unimodal('teacher', `teacher-${u}`, 'train.teacher', { images: join(syn, 'classify'), steps });
  const text = await unimodal('text', `text_encoder-u${MINI.textSteps}${sentenceTag}`, 'train.mlm', {
    corpus: join(syn, 'corpus'),
    steps: MINI.textSteps,
    ...sentenceParams,
  });
  const image = await unimodal('image', `image_encoder-${imageTag}`, 'train.image_encoder', {
    images: poolDir,
    steps: MINI.imageSteps,
    batch_size: MINI.imageBatch,
    target: MINI.mimTarget,
    mask_ratio: MINI.maskRatio,
    ...(MINI.mimTarget === 'simclr' ? MINI.simclr : {}),
  });
  if (only.length) continue;
  const row = { seed };
  for (const init of arms) {
    // The random arm reads only the image encoder's shape, so it does not depend on the image objective.
    const tag =
      init === 'random'
        ? `${u}-${smkeTag}`
        : `${imageTag}-${smkeTag}${MINI.textSteps === steps ? '' : `-t${MINI.textSteps}`}${sentenceTag}${untrained.map((w) => `-no${w}`).join('')}`;
    const s = await stage(
      dir,
      `s_smke_${init}-${tag}`,
      'train.s_smke',
      { pairs, teacher, image_encoder: image, text_encoder: text, init, steps: MINI.smkeSteps, ...MINI.smke },
      seed,
    );
    const model = join(s.outDir, 'model');
    const zs = await stage(dir, `zeroshot_${init}-${tag}`, 'eval.zeroshot', { model, images: join(syn, 'classify') }, seed);
    const ret = await stage(dir, `coco_${init}-${tag}`, 'eval.retrieval', { model, pairs: pairsDir }, seed);
    row[init] = { zs: zs.m.top1, r1: ret.m.r1_mean, kd: s.m.val_kd_accuracy };
    if (glue && init === 'pretrained') {
      row.glue = {};
      for (const task of ['cola', 'sst2', 'mrpc', 'qqp', 'stsb', 'mnli', 'qnli', 'rte', 'wnli']) {
        row.glue[task] = (await stage(dir, `glue_${task}-${tag}`, 'finetune.text', { model, tasks: join(syn, 'glue'), task, ...MINI.glue }, seed)).m.score;
      }
    }
  }
  rows.push(row);
  console.log(JSON.stringify(row));
}

if (arms.length < 2 || only.length) process.exit(0);
const stat = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, lo: Math.min(...xs), hi: Math.max(...xs), spread: Math.max(...xs) - Math.min(...xs) };
};
const fmt = (s) => `${s.mean.toFixed(1)} ± ${(s.spread / 2).toFixed(1)} (${s.lo.toFixed(1)}..${s.hi.toFixed(1)})`;
const out = [
  `## Mini ablation: ${seeds.length} seeds (${seeds.join(', ')}), unimodal ${MINI.unimodalSteps} steps (image: ${MINI.mimTarget}, mask ${MINI.maskRatio}, ${MINI.imageSteps} steps at batch ${MINI.imageBatch}), S-SMKE ${MINI.smkeSteps} steps at lr ${MINI.smke.lr} on ${MINI.pairs} paired images${pipelineSizes ? ' + the cc3m and cc12m stand-ins (1,000 each)' : ''}, image encoder on ${MINI.imagePool ? `${MINI.imagePool} unpaired images` : 'the paired images'}, MLM ${MINI.textSteps} steps${SENTENCE.weight ? ` + ${SENTENCE.objective === 'infonce' ? `sentence InfoNCE (weight ${SENTENCE.weight}, temperature ${SENTENCE.temperature}, views masked at ${SENTENCE.maskRate}${SENTENCE.hard ? ', MLM-sampled hard negatives' : ''}` : `CLS-conditioned decoder (weight ${SENTENCE.weight}, copy masked at ${SENTENCE.decoderMask}`}, MLM weight ${SENTENCE.mlm})` : ''}, corpus knowledge share ${knowledgeFraction}, training captions' vocabulary ${trainVocabulary}${untrained.length ? ` (untrained in the pretrained arm: ${untrained.join(', ')})` : ''}, ${MINI.smke.layers} encoder layers kept`,
  '',
  '| metric | pretrained init | random init | held |',
  '|---|---|---|---|',
];
for (const [key, label] of [
  ['zs', 'zero-shot top-1'],
  ['r1', 'COCO-like R@1 (TR@1+IR@1)/2'],
  ['kd', 'in-batch val KD accuracy'],
]) {
  const a = stat(rows.map((r) => r.pretrained[key])),
    b = stat(rows.map((r) => r.random[key]));
  // "Held": the gap between the means exceeds the spread (max - min) of either arm.
  const held = a.mean - b.mean > Math.max(a.spread, b.spread);
  out.push(`| ${label} | ${fmt(a)} | ${fmt(b)} | ${held ? 'yes' : 'no'} (gap ${(a.mean - b.mean).toFixed(1)}) |`);
}
if (glue) {
  out.push('', '| GLUE-like task | score (pretrained init) | constant baseline | 2 SE | above baseline + 2 SE |', '|---|---|---|---|---|');
  for (const task of Object.keys(rows[0].glue)) {
    const b = await glueBaseline(join(syn, 'glue'), task);
    const s = stat(rows.map((r) => r.glue[task]));
    out.push(
      `| ${task} | ${fmt(s)} | ${b.value.toFixed(1)} (${b.kind}) | ${(2 * b.se).toFixed(1)} | ${s.lo > b.value + 2 * b.se ? 'yes, every seed' : 'no'} |`,
    );
  }
}
console.log(out.join('\n'));
writeFileSync(
  join(
    work,
    `u${MINI.unimodalSteps}-${MINI.mimTarget}-m${MINI.maskRatio}-s${MINI.smkeSteps}-lr${MINI.smke.lr}-p${MINI.pairs}-pool${MINI.imagePool}-t${MINI.textSteps}-i${MINI.imageSteps}-b${MINI.imageBatch}-l${MINI.smke.layers}${sentenceTag}${untrained.map((w) => `-no${w}`).join('')}-seeds${seeds.join('_')}.md`,
  ),
  out.join('\n') + '\n',
);
