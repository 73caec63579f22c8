// A ViT image encoder (also the mini teacher and the Data2Vec2 stand-in):
// patch embedding as a linear map of flattened patches, a CLS token, learned
// position embeddings and pre-LN blocks.

import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';
import { block, defineBlock, defineLayerNorm, defineLinear, layerNorm, linear, linearInitStd, type BlockConfig } from './layers.js';

export interface VitConfig {
  imageSize: number;
  patchSize: number;
  channels: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  eps: number;
  /** LayerScale init in the blocks (BEiTv2 and Data2Vec2 use it); 0 for none. */
  layerScale: number;
}

export const MINI_VIT: VitConfig = { imageSize: 32, patchSize: 8, channels: 3, dim: 48, depth: 2, heads: 4, mlpRatio: 2, eps: 1e-6, layerScale: 0.1 };

export function vitBlockConfig(c: VitConfig): BlockConfig {
  return { dim: c.dim, heads: c.heads, mlpRatio: c.mlpRatio, eps: c.eps, preNorm: true, layerScale: c.layerScale };
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
  for (let i = 0; i < c.depth; i++) defineBlock(ps, `${prefix}.blocks.${i}`, vitBlockConfig(c));
  defineLayerNorm(ps, `${prefix}.norm`, c.dim);
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
 * teacher and truncated encoders omit (s-smke.md: "final norm removed").
 */
export function vitForward(ps: ParamStore, prefix: string, c: VitConfig, images: tf.Tensor, opts: { layers?: number; finalNorm?: boolean; patchMask?: tf.Tensor } = {}): tf.Tensor {
  const b = images.shape[0]!;
  let patches = linear(ps, `${prefix}.patch`, patchify(images, c.patchSize));
  if (opts.patchMask) {
    // patchMask [B, N]: 1 where the patch is hidden from the encoder.
    const m = opts.patchMask.expandDims(2);
    patches = tf.add(tf.mul(patches, tf.sub(1, m)), tf.mul(ps.get(`${prefix}.mask_token`), m));
  }
  const cls = tf.tile(ps.get(`${prefix}.cls`), [b, 1, 1]);
  let x: tf.Tensor = tf.add(tf.concat([cls, patches], 1), ps.get(`${prefix}.pos`));
  const n = Math.min(opts.layers ?? c.depth, c.depth);
  for (let i = 0; i < n; i++) x = block(ps, `${prefix}.blocks.${i}`, vitBlockConfig(c), x).out;
  return opts.finalNorm ?? true ? layerNorm(ps, `${prefix}.norm`, x, c.eps) : x;
}
