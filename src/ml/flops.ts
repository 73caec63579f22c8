// Analytic FLOP counts (multiply-add = 2 FLOPs) of the matrix products in a
// forward pass, to express measured step times as FLOP/s. Elementwise ops,
// softmax and LayerNorm are left out: they are a few percent at these sizes.
// A backward pass costs about twice the forward.

import type { BlockConfig } from './layers.js';
import type { SmkeConfig } from './smke.js';
import { numPatches, type VitConfig } from './vit.js';

export function blockFlops(c: BlockConfig, batch: number, tokens: number): number {
  const d = c.dim,
    m = c.mlpRatio * d;
  const linear = 2 * batch * tokens * (d * 3 * d + d * d + d * m + m * d);
  const attention = 2 * 2 * batch * tokens * tokens * d; // QK^T and AV over all heads
  return linear + attention;
}

export function vitFlops(c: VitConfig, batch: number): number {
  const t = numPatches(c) + 1;
  const patch = 2 * batch * numPatches(c) * c.patchSize * c.patchSize * c.channels * c.dim;
  const block: BlockConfig = { dim: c.dim, heads: c.heads, mlpRatio: c.mlpRatio, eps: c.eps, preNorm: true, layerScale: c.layerScale };
  return patch + c.depth * blockFlops(block, batch, t);
}

/** Forward FLOPs of one S-SMKE training batch: both encoders, the shared block twice, the KD head, the teacher and the loss products. */
export function smkeStepForwardFlops(c: SmkeConfig, teacher: VitConfig, batch: number, textLen: number, bankSize: number): number {
  const d = c.image.dim;
  // The embedding lookup is a gather: no FLOPs. (As a one-hot matMul it would add
  // 2 * batch * textLen * vocab * d FLOPs of no useful work; rates count useful work only.)
  const text =
    c.text.depth * blockFlops({ dim: d, heads: c.text.heads, mlpRatio: c.text.mlpRatio, eps: c.text.eps, preNorm: false, layerScale: 0 }, batch, textLen);
  const shared: BlockConfig = { dim: d, heads: c.sharedHeads, mlpRatio: c.sharedMlpRatio, eps: 1e-6, preNorm: true, layerScale: 0.2 };
  const sharedFlops = blockFlops(shared, batch, numPatches(c.image) + 1) + blockFlops(shared, batch, textLen);
  const kdHead = 2 * 2 * batch * d * c.teacherDim;
  const losses = 2 * 2 * batch * (batch + bankSize) * c.teacherDim + 2 * 2 * batch * batch * (d + c.sharedMlpRatio * d);
  return vitFlops(c.image, batch) + text + sharedFlops + kdHead + losses + vitFlops(teacher, batch);
}
