// A BERT-style text encoder: word + position + segment embeddings, an
// embedding LayerNorm, post-LN blocks, padding masked in attention.

import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';
import { block, defineBlock, defineLayerNorm, embed, gelu, layerNorm, linear, maskToBias, linearInitStd, type BlockConfig } from './layers.js';

export interface TextConfig {
  vocabSize: number;
  maxLen: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  eps: number;
}

export const MINI_TEXT: Omit<TextConfig, 'vocabSize'> = { maxLen: 32, dim: 48, depth: 2, heads: 4, mlpRatio: 2, eps: 1e-12 };

export function textBlockConfig(c: TextConfig): BlockConfig {
  return { dim: c.dim, heads: c.heads, mlpRatio: c.mlpRatio, eps: c.eps, preNorm: false, layerScale: 0 };
}

export function defineText(ps: ParamStore, prefix: string, c: TextConfig): void {
  if (c.dim % c.heads !== 0) throw new Error(`width ${c.dim} is not divisible by ${c.heads} heads`);
  // Width-scaled like the linear layers: at width 768 this is BERT's 0.02.
  const std = linearInitStd(c.dim);
  ps.add(`${prefix}.word`, [c.vocabSize, c.dim], { kind: 'normal', std }, { embedding: true });
  ps.add(`${prefix}.pos`, [c.maxLen, c.dim], { kind: 'normal', std }, { embedding: true });
  ps.add(`${prefix}.segment`, [2, c.dim], { kind: 'normal', std }, { embedding: true });
  defineLayerNorm(ps, `${prefix}.embln`, c.dim);
  for (let i = 0; i < c.depth; i++) defineBlock(ps, `${prefix}.blocks.${i}`, textBlockConfig(c));
}

export interface TextBatch {
  /** [B, T] int32 token ids. */
  ids: tf.Tensor;
  /** [B, T] 1 for real tokens, 0 for padding. */
  mask: tf.Tensor;
  /** [B, T] segment ids (0 first sentence, 1 second); zeros when absent. */
  segments?: tf.Tensor;
}

/** [B, T, D] after the first `layers` blocks (all by default). */
export function textForward(ps: ParamStore, prefix: string, c: TextConfig, batch: TextBatch, opts: { layers?: number } = {}): tf.Tensor {
  const t = batch.ids.shape[1]!;
  if (t > c.maxLen) throw new Error(`sequence of ${t} tokens exceeds the encoder's ${c.maxLen}`);
  let x: tf.Tensor = tf.add(embed(ps.get(`${prefix}.word`), batch.ids), ps.get(`${prefix}.pos`).slice([0, 0], [t, c.dim]));
  if (batch.segments) x = tf.add(x, embed(ps.get(`${prefix}.segment`), batch.segments));
  else x = tf.add(x, ps.get(`${prefix}.segment`).slice([0, 0], [1, c.dim]));
  x = layerNorm(ps, `${prefix}.embln`, x, c.eps);
  const bias = maskToBias(batch.mask);
  const n = Math.min(opts.layers ?? c.depth, c.depth);
  for (let i = 0; i < n; i++) x = block(ps, `${prefix}.blocks.${i}`, textBlockConfig(c), x, bias).out;
  return x;
}

/**
 * BERT's masked-language-model head on hidden states [..., D]: a dense transform, GELU, LayerNorm and
 * a decoder to the vocabulary; logits [N, V], one row per position. Its parameters are
 * `${prefix}.transform`, `${prefix}.ln` and `${prefix}.decoder` (defined by the caller).
 */
export function mlmHeadLogits(ps: ParamStore, prefix: string, hidden: tf.Tensor, dim: number, eps: number): tf.Tensor2D {
  const z = layerNorm(ps, `${prefix}.ln`, gelu(linear(ps, `${prefix}.transform`, hidden)), eps).reshape([-1, dim]);
  return linear(ps, `${prefix}.decoder`, z) as tf.Tensor2D;
}
