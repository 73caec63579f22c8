// Transformer building blocks as functions of a ParamStore. Each `define*`
// creates the parameters under a prefix; the matching function computes with
// them. Weights are stored [in, out] so a forward pass is one matMul.

import * as tf from '@tensorflow/tfjs';
import { LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL } from './layer-norm.js';
import type { ParamStore } from './params.js';

export const INIT_STD = 0.02;

/**
 * BERT and ViT initialise weights with std 0.02, tuned for width 768 (about
 * 0.55/sqrt(768)). Keeping that ratio to 1/sqrt(fan_in) makes narrow mini
 * models start as well-conditioned as the wide ones instead of near-constant.
 */
export function linearInitStd(dIn: number): number {
  return INIT_STD * Math.sqrt(768 / dIn);
}

export function defineLinear(ps: ParamStore, prefix: string, dIn: number, dOut: number, std = linearInitStd(dIn)): void {
  ps.add(`${prefix}.w`, [dIn, dOut], { kind: 'normal', std: Math.min(std, linearInitStd(dIn)) });
  ps.add(`${prefix}.b`, [dOut], { kind: 'const', value: 0 });
}

/**
 * 2-D a @ b whose gradient uses explicit transposes: tfjs's own MatMul
 * gradient multiplies with transposeA/transposeB set, which the wasm
 * backend runs 5-10x slower than a transpose followed by a plain product.
 * Each gradient transposes whichever operands are smaller.
 */
const mm = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  const y = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      const [m, k] = sa.shape,
        n = sb.shape[1];
      const da = tf.matMul(g, tf.transpose(sb));
      // A^T dY directly, or (dY^T A)^T when A is the bigger one to transpose (one-hot rows).
      const db = m * k <= m * n + k * n ? tf.matMul(tf.transpose(sa), g) : tf.transpose(tf.matMul(tf.transpose(g), sa));
      return [da, db];
    },
  };
});

export function matMul2d(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return mm(a, b) as tf.Tensor2D;
}

/** x [..., dIn] -> [..., dOut]. */
export function linear(ps: ParamStore, prefix: string, x: tf.Tensor): tf.Tensor {
  const w = ps.get(`${prefix}.w`);
  const shape = x.shape;
  const flat = x.reshape([-1, shape[shape.length - 1]!]);
  const y = tf.add(matMul2d(flat, w), ps.get(`${prefix}.b`));
  return y.reshape([...shape.slice(0, -1), w.shape[1]!]);
}

export function defineLayerNorm(ps: ParamStore, prefix: string, d: number): void {
  ps.add(`${prefix}.g`, [d], { kind: 'const', value: 1 });
  ps.add(`${prefix}.b`, [d], { kind: 'const', value: 0 });
}

export function layerNorm(ps: ParamStore, prefix: string, x: tf.Tensor, eps: number): tf.Tensor {
  const gamma = ps.get(`${prefix}.g`);
  const beta = ps.get(`${prefix}.b`);
  if (tf.getKernel(LAYER_NORM_KERNEL, tf.getBackend()) && x.dtype === 'float32') return fusedLayerNorm(x, gamma, beta, eps);
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  const xn = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(xn, gamma), beta);
}

/** The same normalisation as two kernels (./layer-norm.ts), where the backend registers them. */
function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, g, b] = args as [tf.Tensor, tf.Tensor, tf.Tensor];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, rstd] = tf.engine().runKernel(LAYER_NORM_KERNEL, { x: xs, gamma: g, beta: b }, { eps }) as tf.Tensor[];
    save([xs, g, mean!, rstd!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, sMean, sRstd] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, { dy, x: sx, gamma: sg, mean: sMean, rstd: sRstd }, {}) as tf.Tensor[];
      },
    };
  });
  return f(x, gamma, beta) as tf.Tensor;
}

/** Exact (erf) GELU, as BERT and ViT use; tfjs 4.22 has no gelu op. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * Embedding lookup: table rows gathered by id. The gradient scatters dy back
 * onto the rows (unsortedSegmentSum; repeated ids add up), one kernel each way
 * instead of a [tokens, vocab] one-hot product. The wasm backend lacks the
 * scatter kernel; src/ml/wasm-kernels.ts registers one.
 */
export function embed(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [vocab, d] = table.shape as [number, number];
  const flat = ids.reshape([-1]).toInt() as tf.Tensor1D;
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.gather(args[0] as tf.Tensor, flat),
    gradFunc: (dy: tf.Tensor) => tf.unsortedSegmentSum(dy, flat, vocab),
  }));
  return (lookup(table) as tf.Tensor).reshape([...ids.shape, d]);
}

/**
 * One-hot rows as float32. Built as int32 and cast: the wasm backend's OneHot
 * kernel with dtype float32 writes the integer bit pattern (1 reads as 1.4e-45).
 */
export function oneHotFloat(ids: tf.Tensor, depth: number): tf.Tensor2D {
  return tf.oneHot(ids.reshape([-1]).toInt() as tf.Tensor1D, depth).toFloat() as tf.Tensor2D;
}

export function l2normalize(x: tf.Tensor, eps = 1e-12): tf.Tensor {
  // Same as torch.nn.functional.normalize: x / max(||x||, eps).
  const n = tf.maximum(tf.norm(x, 'euclidean', -1, true), eps);
  return tf.div(x, n);
}

export interface BlockConfig {
  dim: number;
  heads: number;
  mlpRatio: number;
  eps: number;
  /** Pre-LN (ViT, the shared block) or post-LN (BERT). */
  preNorm: boolean;
  /** Initial LayerScale value; 0 means no LayerScale. */
  layerScale: number;
}

export function defineBlock(ps: ParamStore, prefix: string, c: BlockConfig): void {
  defineLayerNorm(ps, `${prefix}.ln1`, c.dim);
  defineLinear(ps, `${prefix}.attn.qkv`, c.dim, 3 * c.dim);
  defineLinear(ps, `${prefix}.attn.proj`, c.dim, c.dim);
  defineLayerNorm(ps, `${prefix}.ln2`, c.dim);
  defineLinear(ps, `${prefix}.mlp.fc1`, c.dim, c.mlpRatio * c.dim);
  defineLinear(ps, `${prefix}.mlp.fc2`, c.mlpRatio * c.dim, c.dim);
  if (c.layerScale > 0) {
    ps.add(`${prefix}.ls1`, [c.dim], { kind: 'const', value: c.layerScale });
    ps.add(`${prefix}.ls2`, [c.dim], { kind: 'const', value: c.layerScale });
  }
}

/**
 * Multi-head self-attention. `maskBias` is [B, T] with 0 for real tokens and a
 * large negative number for padding, so padded keys get no attention; a rank-4
 * bias ([B or 1, heads, T, T], BEiT's relative positions) is added as it is.
 */
export function attention(ps: ParamStore, prefix: string, x: tf.Tensor, heads: number, maskBias?: tf.Tensor): tf.Tensor {
  const [b, t, d] = x.shape as [number, number, number];
  const dh = d / heads;
  const qkv = linear(ps, `${prefix}.qkv`, x).reshape([b, t, 3, heads, dh]).transpose([2, 0, 3, 1, 4]);
  const [q, k, v] = tf.unstack(qkv, 0) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  let scores: tf.Tensor = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
  if (maskBias) scores = tf.add(scores, maskBias.rank === 4 ? maskBias : maskBias.reshape([b, 1, 1, t]));
  const ctx = tf.matMul(tf.softmax(scores, -1), v).transpose([0, 2, 1, 3]).reshape([b, t, d]);
  return linear(ps, `${prefix}.proj`, ctx);
}

export interface BlockOutput {
  out: tf.Tensor;
  /** The MLP's first linear output, before GELU (S-SMKE's x_interm source). */
  interm: tf.Tensor;
  /** The MLP's output before the residual add (data2vec's per-layer target). */
  mlp: tf.Tensor;
}

export function block(ps: ParamStore, prefix: string, c: BlockConfig, x: tf.Tensor, maskBias?: tf.Tensor): BlockOutput {
  const scale = (name: string, y: tf.Tensor) => (c.layerScale > 0 ? tf.mul(y, ps.get(`${prefix}.${name}`)) : y);
  if (c.preNorm) {
    const h = tf.add(x, scale('ls1', attention(ps, `${prefix}.attn`, layerNorm(ps, `${prefix}.ln1`, x, c.eps), c.heads, maskBias)));
    const interm = linear(ps, `${prefix}.mlp.fc1`, layerNorm(ps, `${prefix}.ln2`, h, c.eps));
    const mlp = linear(ps, `${prefix}.mlp.fc2`, gelu(interm));
    const out = tf.add(h, scale('ls2', mlp));
    return { out, interm, mlp };
  }
  const h = layerNorm(ps, `${prefix}.ln1`, tf.add(x, scale('ls1', attention(ps, `${prefix}.attn`, x, c.heads, maskBias))), c.eps);
  const interm = linear(ps, `${prefix}.mlp.fc1`, h);
  const mlp = linear(ps, `${prefix}.mlp.fc2`, gelu(interm));
  const out = layerNorm(ps, `${prefix}.ln2`, tf.add(h, scale('ls2', mlp)), c.eps);
  return { out, interm, mlp };
}

/** [B, T] attention mask (1 real, 0 pad) -> additive bias for attention scores. */
export function maskToBias(mask: tf.Tensor): tf.Tensor {
  return tf.mul(tf.sub(1, mask.toFloat()), -1e9);
}
