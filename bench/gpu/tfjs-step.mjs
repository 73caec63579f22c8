#!/usr/bin/env node
// The paper-width S-SMKE training step in smke's own TypeScript model
// (src/ml) on a chosen tfjs backend, for comparison with bench/gpu/torch_step.py
// on the same shapes: ViT-B/16 at 224 and a BERT-base-sized text encoder, both
// truncated to 6 layers, the shared block, the KD head, contrastive KD against
// a 65,536-entry memory bank and both ITC losses; forward + backward + AdamW.
// Teacher targets are given (random unit vectors) in both, so only the
// student's step is timed. Prints one JSON line.
// Usage: node bench/gpu/tfjs-step.mjs [backend=webgpu] [batch=32] [steps=10] [paper|small]
// (`small` shrinks every width to check the script itself on a CPU backend.)
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../dist/ml/backend.js';
import { ParamStore } from '../../dist/ml/params.js';
import { defineSmke } from '../../dist/ml/smke.js';
import { AdamW } from '../../dist/ml/optim.js';
import { MemoryBank } from '../../dist/ml/losses.js';
import { smkeTrainStep } from '../../dist/ml/smke-train.js';
import { countKernels } from '../../dist/ml/kernel-count.js';

const [backendArg = 'webgpu', batchArg = '32', stepsArg = '10', scale = 'paper'] = process.argv.slice(2);
const B = Number(batchArg), STEPS = Number(stepsArg);
const small = scale === 'small';
const D = small ? 64 : 768, HEADS = small ? 4 : 12, T = small ? 16 : 64, VOCAB = small ? 500 : 30522, BANK = small ? 256 : 65536;
const IMG = small ? 32 : 224, PATCH = small ? 8 : 16;
const image = { imageSize: IMG, patchSize: PATCH, channels: 3, dim: D, depth: 6, heads: HEADS, mlpRatio: 4, eps: 1e-6, layerScale: 0.1 };
const text = { vocabSize: VOCAB, maxLen: T, dim: D, depth: 6, heads: HEADS, mlpRatio: 4, eps: 1e-12 };
const cfg = { image, text, sharedHeads: HEADS, sharedMlpRatio: 4, teacherDim: D };

const choice = await selectBackend(backendArg, (m) => process.stderr.write(m + '\n'));
const ps = new ParamStore(42);
defineSmke(ps, cfg);
const opt = new AdamW(ps);
const bank = new MemoryBank(BANK, D, 7);
// Seeded inputs: the first step's loss can be compared across backends.
const images = tf.randomNormal([B, IMG, IMG, 3], 0, 1, 'float32', 1);
const ids = tf.randomUniform([B, T], 0, VOCAB, 'int32', 2);
const mask = tf.ones([B, T], 'int32');
const teacher = tf.tidy(() => {
  const t = tf.randomNormal([B, D], 0, 1, 'float32', 3);
  return tf.div(t, tf.norm(t, 2, 1, true));
});
const batch = [{ images, text: { ids, mask }, teacher }];

// As train.s_smke does: step k's metrics are read after step k+1 is queued (nothing inside a step
// reads back to the CPU), the last one after the loop, so the timing includes all the work.
const step = () => smkeTrainStep(ps, cfg, opt, bank, batch, 1e-4, 1.0);
const first = await (await step()).read();
for (let i = 0; i < 2; i++) await (await step()).read();
const t0 = performance.now();
let queued, last;
for (let i = 0; i < STEPS; i++) {
  const next = await step();
  if (queued) last = await queued.read();
  queued = next;
}
last = await queued.read();
const ms = (performance.now() - t0) / STEPS;
const counted = await countKernels(() => step());
await counted.result.read();
const notView = counted.counts.kernels - (counted.counts.byName.get('Reshape') ?? 0);

/** Adapter name and the features that matter for a faster path, from a fresh Dawn instance with these flags. */
async function probeAdapter(flags) {
  try {
    const { create } = await import('webgpu');
    const adapter = await create(flags).requestAdapter();
    if (!adapter) return { flags, adapter: null };
    const features = [...adapter.features].filter((f) => /f16|subgroup|timestamp/.test(f)).sort();
    return { flags, adapter: adapter.info?.device || adapter.info?.description || '', vendor: adapter.info?.vendor, features };
  } catch (e) {
    return { flags, error: String(e.message ?? e).split('\n')[0] };
  }
}
const adapters =
  choice.backend === 'webgpu' ? [await probeAdapter([]), await probeAdapter(['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia'])] : undefined;
console.log(JSON.stringify({
  impl: `smke-tfjs-${choice.backend}`, batch: B, step_ms: Math.round(ms * 100) / 100,
  examples_per_s: Math.round((B / ms) * 1000 * 10) / 10, params: ps.count(), first_loss: first.loss, loss: last.loss, tensors: tf.memory().numTensors,
  kernels_per_step: counted.counts.kernels, kernels_per_step_without_reshape: notView, reads_per_step: counted.counts.readbacks, ...(adapters ? { adapters } : {}),
}));
