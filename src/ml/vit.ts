// A ViT image encoder (also the mini teacher and the Data2Vec2 stand-in):
// patch embedding as a linear map of flattened patches, a CLS token, learned
// position embeddings and pre-LN blocks.

import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';
import { block, defineBlock, defineLayerNorm, defineLinear, layerNorm, linear, linearInitStd, type BlockConfig, type BlockOutput } from './layers.js';

export interface VitConfig {
  imageSize: number;
  patchSize: number;
  channels: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  eps: number;
  /** LayerScale init in the blocks (BEiTv2 uses it); 0 for none. */
  layerScale: number;
  // Options for imported published encoders (src/ml/import-vit.ts); absent in
  // smke's own models, which are pre-LN with a final norm and no relative bias.
  /** Pre-LN blocks (default); false for post-LN ones (Data2Vec2: layer_norm_first = False). */
  preNorm?: boolean;
  /** A LayerNorm on the embedded sequence before the first block (`embln`; Data2Vec2's context encoder norm). */
  embedNorm?: boolean;
  /** Whether the encoder has a final LayerNorm (`norm`; default true). */
  finalNorm?: boolean;
  /** BEiT's relative position bias: one table for all blocks (`rel_pos`) or one per block (`blocks.i.attn.rel_pos`). */
  relPos?: 'shared' | 'block';
}

export const MINI_VIT: VitConfig = { imageSize: 32, patchSize: 8, channels: 3, dim: 48, depth: 2, heads: 4, mlpRatio: 2, eps: 1e-6, layerScale: 0.1 };

export function vitBlockConfig(c: VitConfig): BlockConfig {
  return { dim: c.dim, heads: c.heads, mlpRatio: c.mlpRatio, eps: c.eps, preNorm: c.preNorm ?? true, layerScale: c.layerScale };
}

/**
 * BEiT's relative position index [T, T] (T = patches + CLS) into a table of
 * (2Wh-1)(2Ww-1)+3 rows: patch pairs index by their (dy, dx) offset; the last
 * three rows are CLS->patch, patch->CLS and CLS->CLS.
 */
export function relativePositionIndex(wh: number, ww: number): Int32Array {
  const n = wh * ww,
    t = n + 1,
    rows = (2 * wh - 1) * (2 * ww - 1) + 3;
  const idx = new Int32Array(t * t);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const dy = Math.floor(i / ww) - Math.floor(j / ww) + wh - 1;
      const dx = (i % ww) - (j % ww) + ww - 1;
      idx[(i + 1) * t + j + 1] = dy * (2 * ww - 1) + dx;
    }
  for (let j = 0; j < t; j++) idx[j] = rows - 3;
  for (let i = 0; i < t; i++) idx[i * t] = rows - 2;
  idx[0] = rows - 1;
  return idx;
}

export function relativePositionRows(c: VitConfig): number {
  const w = c.imageSize / c.patchSize;
  return (2 * w - 1) * (2 * w - 1) + 3;
}

/** [1, heads, T, T] attention bias from a [rows, heads] table. */
function relativeBias(table: tf.Tensor, c: VitConfig): tf.Tensor {
  const w = c.imageSize / c.patchSize,
    t = w * w + 1;
  // gather, not a one-hot product: the table is read (frozen teacher), and
  // a one-hot of T*T rows would be larger than the table by far.
  const idx = tf.tensor1d(relativePositionIndex(w, w), 'int32');
  const bias = tf.gather(table, idx).reshape([t, t, c.heads]).transpose([2, 0, 1]).expandDims(0);
  idx.dispose();
  return bias;
}

export function numPatches(c: VitConfig): number {
  if (c.imageSize % c.patchSize !== 0) throw new Error(`image size ${c.imageSize} is not a multiple of patch size ${c.patchSize}`);
  return (c.imageSize / c.patchSize) ** 2;
}

export function defineVit(ps: ParamStore, prefix: string, c: VitConfig, opts: { maskToken?: boolean } = {}): void {
  if (c.dim % c.heads !== 0) throw new Error(`width ${c.dim} is not divisible by ${c.heads} heads`);
  defineLinear(ps, `${prefix}.patch`, c.patchSize * c.patchSize * c.channels, c.dim);
  const std = linearInitStd(c.dim);
  ps.add(`${prefix}.cls`, [1, 1, c.dim], { kind: 'normal', std }, { embedding: true });
  ps.add(`${prefix}.pos`, [1, numPatches(c) + 1, c.dim], { kind: 'normal', std }, { embedding: true });
  const rows = c.relPos ? relativePositionRows(c) : 0;
  if (c.embedNorm) defineLayerNorm(ps, `${prefix}.embln`, c.dim);
  if (c.relPos === 'shared') ps.add(`${prefix}.rel_pos`, [rows, c.heads], { kind: 'const', value: 0 }, { embedding: true });
  for (let i = 0; i < c.depth; i++) {
    defineBlock(ps, `${prefix}.blocks.${i}`, vitBlockConfig(c));
    if (c.relPos === 'block') ps.add(`${prefix}.blocks.${i}.attn.rel_pos`, [rows, c.heads], { kind: 'const', value: 0 }, { embedding: true });
  }
  if (c.finalNorm ?? true) defineLayerNorm(ps, `${prefix}.norm`, c.dim);
  // Masked image modelling replaces hidden patches' embeddings with this token.
  if (opts.maskToken) ps.add(`${prefix}.mask_token`, [1, 1, c.dim], { kind: 'normal', std }, { embedding: true });
}

/** [B, H, W, C] -> [B, N, p*p*C], patches in row-major order. */
export function patchify(images: tf.Tensor, p: number): tf.Tensor {
  const [b, h, w, ch] = images.shape as [number, number, number, number];
  return images
    .reshape([b, h / p, p, w / p, p, ch])
    .transpose([0, 1, 3, 2, 4, 5])
    .reshape([b, (h / p) * (w / p), p * p * ch]);
}

/**
 * Token sequence [B, N+1, D] (CLS first) after the first `layers` blocks
 * (all by default). `finalNorm` applies the encoder's last LayerNorm, which the
 * teacher and truncated encoders omit (docs/method.md, "Model").
 * `blocks`, when given, receives every block's outputs in order (data2vec's targets).
 */
export function vitForward(
  ps: ParamStore,
  prefix: string,
  c: VitConfig,
  images: tf.Tensor,
  opts: { layers?: number; finalNorm?: boolean; patchMask?: tf.Tensor; blocks?: BlockOutput[] } = {},
): tf.Tensor {
  const b = images.shape[0]!;
  let patches = linear(ps, `${prefix}.patch`, patchify(images, c.patchSize));
  if (opts.patchMask) {
    // patchMask [B, N]: 1 where the patch is hidden from the encoder.
    const m = opts.patchMask.expandDims(2);
    patches = tf.add(tf.mul(patches, tf.sub(1, m)), tf.mul(ps.get(`${prefix}.mask_token`), m));
  }
  const cls = tf.tile(ps.get(`${prefix}.cls`), [b, 1, 1]);
  let x: tf.Tensor = tf.add(tf.concat([cls, patches], 1), ps.get(`${prefix}.pos`));
  if (c.embedNorm) x = layerNorm(ps, `${prefix}.embln`, x, c.eps);
  const n = Math.min(opts.layers ?? c.depth, c.depth);
  const shared = c.relPos === 'shared' ? relativeBias(ps.get(`${prefix}.rel_pos`), c) : undefined;
  for (let i = 0; i < n; i++) {
    const bias = c.relPos === 'block' ? relativeBias(ps.get(`${prefix}.blocks.${i}.attn.rel_pos`), c) : shared;
    const r = block(ps, `${prefix}.blocks.${i}`, vitBlockConfig(c), x, bias);
    opts.blocks?.push(r);
    x = r.out;
  }
  if (opts.finalNorm ?? true) {
    if (!(c.finalNorm ?? true)) throw new Error(`this image encoder has no final norm (imported without one): ask for its output with finalNorm: false`);
    return layerNorm(ps, `${prefix}.norm`, x, c.eps);
  }
  return x;
}
