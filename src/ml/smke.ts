// The S-SMKE model (docs/method.md, "Model"): truncated image and text encoders,
// a token-type embedding scaled by one LayerScale added AFTER the encoders,
// one shared pre-LN block, and the KD head. Also the full training loss.

import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';
import { block, defineBlock, defineLayerNorm, defineLinear, l2normalize, layerNorm, linear, maskToBias, INIT_STD, type BlockConfig } from './layers.js';
import { defineVit, vitForward, type VitConfig } from './vit.js';
import { defineText, textForward, type TextBatch, type TextConfig } from './text.js';
import { clipLoss, diagonalAccuracy, kdLoss, LOGIT_SCALE_INIT, LOGIT_SCALE_MAX, KD_SCALE } from './losses.js';

export interface SmkeConfig {
  /** Image encoder (its depth is the number of layers kept: the truncation). */
  image: VitConfig;
  /** Text encoder, likewise truncated by its depth. */
  text: TextConfig;
  sharedHeads: number;
  sharedMlpRatio: number;
  /** Width of the teacher's CLS, the KD head's output. */
  teacherDim: number;
}

export const SHARED_EPS = 1e-6;
export const SHARED_LAYER_SCALE = 0.2;
export const TOKEN_TYPE_SCALE_INIT = 1e-5;

export function sharedBlockConfig(c: SmkeConfig): BlockConfig {
  return { dim: c.image.dim, heads: c.sharedHeads, mlpRatio: c.sharedMlpRatio, eps: SHARED_EPS, preNorm: true, layerScale: SHARED_LAYER_SCALE };
}

export function defineSmke(ps: ParamStore, c: SmkeConfig): void {
  if (c.image.dim !== c.text.dim) throw new Error(`image width ${c.image.dim} and text width ${c.text.dim} must match`);
  const d = c.image.dim;
  defineVit(ps, 'image', c.image);
  // Truncated encoders feed the shared block directly; the image encoder's final norm is unused.
  ps.setTrainable('image.norm', false);
  defineText(ps, 'text', c.text);
  ps.add('token_type.table', [2, d], { kind: 'normal', std: INIT_STD }, { embedding: true });
  ps.add('token_type.scale', [d], { kind: 'const', value: TOKEN_TYPE_SCALE_INIT });
  defineBlock(ps, 'shared', sharedBlockConfig(c));
  defineLayerNorm(ps, 'kd.ln', d);
  defineLinear(ps, 'kd.head', d, c.teacherDim);
  ps.add('scale.interm', [], { kind: 'const', value: LOGIT_SCALE_INIT });
  ps.add('scale.out', [], { kind: 'const', value: LOGIT_SCALE_INIT });
}

export interface SmkeEmbeddings {
  /** L2-normalised MLP pre-GELU activation at CLS [B, mlp*D]. */
  interm: tf.Tensor;
  /** L2-normalised shared-block output at CLS [B, D]: used for retrieval and zero-shot. */
  x: tf.Tensor;
  /** L2-normalised KD head output [B, teacherDim]. */
  kd: tf.Tensor;
}

function typeEmbedding(ps: ParamStore, type: 0 | 1): tf.Tensor {
  return tf.mul(ps.get('token_type.table').slice([type, 0], [1, -1]), ps.get('token_type.scale'));
}

function shared(ps: ParamStore, c: SmkeConfig, tokens: tf.Tensor, bias?: tf.Tensor): SmkeEmbeddings {
  const { out, interm } = block(ps, 'shared', sharedBlockConfig(c), tokens, bias);
  const cls = out.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]);
  const intermCls = interm.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]);
  const kd = linear(ps, 'kd.head', layerNorm(ps, 'kd.ln', cls, SHARED_EPS));
  return { interm: l2normalize(intermCls), x: l2normalize(cls), kd: l2normalize(kd) };
}

/** Image-side encoder tokens, type embedding added: [B, N+1, D]. */
export function smkeImageTokens(ps: ParamStore, c: SmkeConfig, images: tf.Tensor): tf.Tensor {
  return tf.add(vitForward(ps, 'image', c.image, images, { finalNorm: false }), typeEmbedding(ps, 1));
}

export function smkeImage(ps: ParamStore, c: SmkeConfig, images: tf.Tensor): SmkeEmbeddings {
  return shared(ps, c, smkeImageTokens(ps, c, images));
}

/** Every text token after the shared block [B, T, D]: the text model GLUE finetuning uses. */
export function smkeTextTokens(ps: ParamStore, c: SmkeConfig, text: TextBatch): tf.Tensor {
  const tokens = tf.add(textForward(ps, 'text', c.text, text), typeEmbedding(ps, 0));
  return block(ps, 'shared', sharedBlockConfig(c), tokens, maskToBias(text.mask)).out;
}

export function smkeText(ps: ParamStore, c: SmkeConfig, text: TextBatch): SmkeEmbeddings {
  const tokens = tf.add(textForward(ps, 'text', c.text, text), typeEmbedding(ps, 0));
  return shared(ps, c, tokens, maskToBias(text.mask));
}

export interface SmkeLoss {
  total: tf.Scalar;
  kd: tf.Scalar;
  itc: tf.Scalar;
}

/**
 * L = L_KD + L_ITC for one batch of (image, caption, teacher target) triples.
 * `teacher` is the normalised teacher CLS [B, Dt]; `bank` null at validation.
 */
export function smkeLoss(
  ps: ParamStore,
  c: SmkeConfig,
  images: tf.Tensor,
  text: TextBatch,
  teacher: tf.Tensor,
  bank: tf.Tensor | null,
): SmkeLoss & { img: SmkeEmbeddings; txt: SmkeEmbeddings } {
  const img = smkeImage(ps, c, images);
  const txt = smkeText(ps, c, text);
  const kd = kdLoss(img.kd, txt.kd, teacher, bank, KD_SCALE);
  const itc = tf.div(tf.add(clipLoss(img.interm, txt.interm, ps.get('scale.interm')), clipLoss(img.x, txt.x, ps.get('scale.out'))), 2) as tf.Scalar;
  return { total: tf.add(kd, itc) as tf.Scalar, kd, itc, img, txt };
}

/** In-batch accuracies for validation: KD (image and text vs teacher) and ITC on x (both directions). */
export function smkeAccuracies(img: SmkeEmbeddings, txt: SmkeEmbeddings, teacher: tf.Tensor): { kdAcc: tf.Scalar; itcAcc: tf.Scalar } {
  const kdAcc = tf.div(
    tf.add(diagonalAccuracy(tf.matMul(img.kd, teacher, false, true)), diagonalAccuracy(tf.matMul(txt.kd, teacher, false, true))),
    2,
  ) as tf.Scalar;
  const sim = tf.matMul(img.x, txt.x, false, true);
  const itcAcc = tf.div(tf.add(diagonalAccuracy(sim), diagonalAccuracy(sim.transpose())), 2) as tf.Scalar;
  return { kdAcc, itcAcc };
}

/** Clamp both learned logit scales to [0, ln 100]; called after every optimiser step. */
export function clampLogitScales(ps: ParamStore): void {
  for (const n of ['scale.interm', 'scale.out']) {
    const v = ps.get(n);
    tf.tidy(() => v.assign(tf.clipByValue(v, 0, LOGIT_SCALE_MAX)));
  }
}
