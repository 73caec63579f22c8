#!/usr/bin/env node
// ML benchmarks (run after `npm run build`; use `nice`):
//  - mini S-SMKE training step (the train.s_smke defaults: 32 px images,
//    patch 8, width 48, 2+2 encoder layers, shared block, teacher width 48,
//    batch 32, 32 text tokens, bank 1024): ms/step and examples/s, on each
//    backend asked for (default: wasm and cpu);
//  - the same model's forward+backward FLOP/s (analytic matmul FLOPs of useful
//    work, see src/ml/flops.ts) beside the backend's own matMul FLOP/s on the
//    model's largest matmul shape and on a square 512^3 product;
//  - tfjs kernels (dispatches on a GPU backend) per forward+backward and per
//    whole train step, and reads back to the CPU per step
//    (src/ml/kernel-count.ts);
//  - resident memory after training.
// On wasm it runs twice, interleaved: with tfjs 4.22's own kernels and with
// src/ml/wasm-kernels.ts's (transpose, zero-copy identity/cast), which the
// backend selection installs. With `--compare DIR` (a `dist/` built from
// another commit), the model, step and optimiser come from DIR and from this
// tree's dist/ in interleaved runs (smke's wasm kernels in both), so a change
// is measured before/after in one run. Times are CPU seconds of this process
// (wasm runs on one thread): on a machine shared with other jobs, wall time
// measures their load more than this code.
// Usage: nice node bench/ml.mjs [--compare DIR] [backend ...]
import * as tf from '@tensorflow/tfjs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { selectBackend } from '../dist/ml/backend.js';
import { smkeStepForwardFlops } from '../dist/ml/flops.js';
import { countKernels } from '../dist/ml/kernel-count.js';
import { Rng } from '../dist/data/rng.js';
import { useFastWasmKernels } from '../dist/ml/wasm-kernels.js';

const args = process.argv.slice(2);
const cmpAt = args.indexOf('--compare');
const compareDir = cmpAt >= 0 ? resolve(args.splice(cmpAt, 2)[1]) : undefined;
const here = new URL('../dist/', import.meta.url).pathname;
/** The modules a run measures, from one dist/ directory. */
async function load(dist) {
  const m = (p) => import(pathToFileURL(resolve(dist, p)).href);
  const [params, smke, vit, optim, losses, train, run] = await Promise.all(
    ['ml/params.js', 'ml/smke.js', 'ml/vit.js', 'ml/optim.js', 'ml/losses.js', 'ml/smke-train.js', 'stages/ml/s-smke-run.js'].map(m),
  );
  return { ...params, ...smke, ...vit, ...optim, ...losses, ...train, teacherTargets: run.teacherTargets };
}
const impls = { this: await load(here), ...(compareDir ? { before: await load(compareDir) } : {}) };
const backends = args.length ? args : ['wasm', 'cpu'];
const B = 32, T = 32, BANK = 1024;
const vit = { imageSize: 32, patchSize: 8, channels: 3, dim: 48, depth: 2, heads: 4, mlpRatio: 2, eps: 1e-6, layerScale: 0.1 };
const cfg = { image: vit, text: { vocabSize: 400, maxLen: T, dim: 48, depth: 2, heads: 4, mlpRatio: 2, eps: 1e-12 }, sharedHeads: 4, sharedMlpRatio: 4, teacherDim: 48 };

function batch(seed) {
  const rng = new Rng(seed);
  const images = tf.tensor4d(Float32Array.from({ length: B * 32 * 32 * 3 }, () => rng.normal()), [B, 32, 32, 3]);
  const ids = [], mask = [];
  for (let i = 0; i < B; i++) for (let j = 0; j < T; j++) { const real = j < 8 + rng.int(T - 8); ids.push(real ? 5 + rng.int(390) : 0); mask.push(real ? 1 : 0); }
  return { images, text: { ids: tf.tensor2d(ids, [B, T], 'int32'), mask: tf.tensor2d(mask, [B, T], 'int32') } };
}

async function time(f, n) {
  await f();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6 / n;
}

async function matmulFlops(m, k, n, reps) {
  const a = tf.randomNormal([m, k]), b = tf.randomNormal([k, n]);
  const s = await time(async () => { const c = tf.matMul(a, b); await c.data(); c.dispose(); }, reps);
  tf.dispose([a, b]);
  return (2 * m * k * n) / s;
}

const fmt = (x) => (x / 1e9).toFixed(2) + ' GFLOP/s';
const runs = backends.flatMap((name) => {
  if (compareDir) return [0, 1].flatMap(() => [[name, name === 'wasm' ? true : undefined, 'before'], [name, name === 'wasm' ? true : undefined, 'this']]);
  return name === 'wasm' ? [['wasm', false, 'this'], ['wasm', true, 'this'], ['wasm', false, 'this'], ['wasm', true, 'this']] : [[name, undefined, 'this']];
});
const results = new Map();
for (const [name, fast, which] of runs) {
  const { ParamStore, defineSmke, defineVit, AdamW, lossAndGrads, MemoryBank, smkeTrainStep, smkeLoss, teacherTargets } = impls[which];
  await selectBackend(name, () => {});
  if (fast !== undefined) useFastWasmKernels(fast);
  const label = compareDir ? `${name}, ${which === 'this' ? 'this tree' : compareDir}` : fast === undefined ? name : `${name}, ${fast ? 'smke kernels' : 'tfjs kernels'}`;
  const ps = new ParamStore(1);
  defineSmke(ps, cfg);
  const teacher = new ParamStore(2);
  defineVit(teacher, 'image', vit);
  teacher.setTrainable('', false);
  const opt = new AdamW(ps);
  const bank = new MemoryBank(BANK, cfg.teacherDim, 3);
  const data = [0, 1, 2].map(batch);
  let k = 0;
  const steps = name === 'cpu' ? 4 : 10;
  const trainStep = async () => {
    const { images, text } = data[k++ % 3];
    const t = teacherTargets(teacher, vit, images);
    const r = await smkeTrainStep(ps, cfg, opt, bank, [{ images, text, teacher: t }], 1e-4, 1);
    // A step that leaves its metrics on the device is read after it, as the stage does.
    if (typeof r.read === 'function') await r.read();
    t.dispose();
  };
  const stepS = await time(trainStep, steps);
  const { counts: stepCounts } = await countKernels(async () => {
    const { images, text } = data[k++ % 3];
    const t = teacherTargets(teacher, vit, images);
    const r = await smkeTrainStep(ps, cfg, opt, bank, [{ images, text, teacher: t }], 1e-4, 1);
    t.dispose();
    return r;
  }).then(async (x) => {
    if (typeof x.result.read === 'function') await x.result.read();
    return x;
  });
  const { images, text } = data[0];
  const tgt = teacherTargets(teacher, vit, images);
  const fb = async () => {
    const { loss, grads } = lossAndGrads(ps, () => ({ loss: smkeLoss(ps, cfg, images, text, tgt, bank.tensor).total }));
    await loss.data();
    loss.dispose();
    for (const g of grads.values()) g.dispose();
  };
  const fbS = await time(fb, steps);
  const kernels = (await countKernels(fb)).counts.kernels - 1; // less the loss read
  const fwdFlops = smkeStepForwardFlops(cfg, vit, B, T, BANK);
  // The teacher runs forward only; everything else forward and backward (backward ~ 2x forward).
  const teacherFwd = smkeStepForwardFlops({ ...cfg, image: { ...vit, depth: 0 }, text: { ...cfg.text, depth: 0, vocabSize: 0 }, sharedMlpRatio: 0, teacherDim: 0 }, vit, B, T, 0);
  const fbFlops = 3 * (fwdFlops - teacherFwd);
  const mmModel = await matmulFlops(B * T, 48, 192, name === 'cpu' ? 5 : 50);
  const mmSquare = await matmulFlops(512, 512, 512, name === 'cpu' ? 2 : 10);
  const r = {
    stepMs: stepS * 1000, exS: B / stepS, fbMs: fbS * 1000, rate: fbFlops / fbS, pct: (fbFlops / fbS / mmSquare) * 100, kernels, mmModel, mmSquare,
    // The whole step's work: the student forward+backward and the teacher forward.
    stepPct: ((fbFlops + teacherFwd) / stepS / mmSquare) * 100,
    stepKernels: stepCounts.kernels, stepReads: stepCounts.readbacks,
    topKernels: [...stepCounts.byName].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([n, c]) => `${n} ${c}`).join(', '),
  };
  // Interleaved repeats: keep the faster of each label's runs (the other jobs on the machine only ever slow a run down).
  const prev = results.get(label);
  if (!prev || r.stepMs < prev.stepMs) results.set(label, r);
  console.log(`[${label}] mini S-SMKE train step: ${r.stepMs.toFixed(1)} CPU ms/step, ${r.exS.toFixed(1)} examples/s (batch ${B}, ${ps.count()} params)`);
  console.log(`[${label}] forward+backward: ${r.fbMs.toFixed(1)} ms, ${kernels} kernels, ${(fbFlops / 1e9).toFixed(3)} GFLOP -> ${fmt(r.rate)}`);
  console.log(`[${label}] whole train step: ${r.stepKernels} kernels (${r.topKernels}), ${r.stepReads} reads back to the CPU inside smkeTrainStep`);
  console.log(`[${label}] backend matMul: ${fmt(mmModel)} at ${B * T}x48x192 (the model's MLP shape), ${fmt(mmSquare)} at 512^3; forward+backward reaches ${r.pct.toFixed(1)}% of the 512^3 rate, the whole step ${r.stepPct.toFixed(1)}%`);
  console.log(`[${label}] resident memory ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB, tensors ${tf.memory().numTensors}`);
  tgt.dispose();
  for (const d of data) tf.dispose([d.images, d.text.ids, d.text.mask]);
  bank.dispose(); opt.dispose(); ps.dispose(); teacher.dispose();
}
console.log('\n| backend | CPU ms/step | examples/s | fwd+bwd ms | kernels fwd+bwd | kernels/step | reads/step | fwd+bwd % of 512^3 matMul rate | step % |\n|---|---|---|---|---|---|---|---|---|');
for (const [label, r] of results)
  console.log(`| ${label} | ${r.stepMs.toFixed(0)} | ${r.exS.toFixed(1)} | ${r.fbMs.toFixed(0)} | ${r.kernels} | ${r.stepKernels} | ${r.stepReads} | ${r.pct.toFixed(1)} | ${r.stepPct.toFixed(1)} |`);
if (compareDir)
  for (const name of backends) {
    const a = results.get(`${name}, ${compareDir}`), b = results.get(`${name}, this tree`);
    if (a && b) console.log(`${name}: examples/s ${b.exS.toFixed(1)} vs ${a.exS.toFixed(1)} = ${(b.exS / a.exS).toFixed(2)}x; kernels/step ${b.stepKernels} vs ${a.stepKernels}; step % of matMul rate ${b.stepPct.toFixed(1)} vs ${a.stepPct.toFixed(1)}`);
  }
