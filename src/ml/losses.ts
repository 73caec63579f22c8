// S-SMKE's losses (the S-SMKE paper, "Losses"; docs/ml.md, "Models"): contrastive distillation against a
// memory bank of teacher targets, and a CLIP loss on x_interm and on x.

import * as tf from '@tensorflow/tfjs';
import { Rng } from '../data/rng.js';
import { oneHotFloat } from './layers.js';

/** Mean cross-entropy of logits [B, C] against the diagonal labels 0..B-1. */
export function diagonalCrossEntropy(logits: tf.Tensor): tf.Scalar {
  const b = logits.shape[0]!;
  const logp = tf.logSoftmax(logits, -1);
  const labels = tf.eye(b, logits.shape[1]!);
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, labels), -1))) as tf.Scalar;
}

/**
 * Mean negative log-likelihood of `targets` under `logits` [N, V], over the rows whose target is a token
 * id (>= 0): the masked positions of masked-language modelling; the other rows (target -1) do not count.
 */
export function maskedTokenNll(logits: tf.Tensor, targets: number[]): tf.Scalar {
  const counted = tf.tensor1d(targets.map((x) => (x >= 0 ? 1 : 0)));
  const y = oneHotFloat(
    tf.tensor1d(
      targets.map((x) => Math.max(0, x)),
      'int32',
    ),
    logits.shape[1]!,
  );
  const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), y), 1));
  return tf.div(tf.sum(tf.mul(nll, counted)), tf.sum(counted)) as tf.Scalar;
}

/** Fraction of rows whose largest logit is the diagonal one, strictly (in-batch accuracy). */
export function diagonalAccuracy(logits: tf.Tensor): tf.Scalar {
  // A hit only when the diagonal beats every other entry of its row strictly:
  // argMax picks the first of tied maxima, which counted a constant model's
  // row 0 as right. Ties and NaN count against the model, as metrics.ts's rankings.
  return tf.tidy(() => {
    const [b, n] = logits.shape as [number, number];
    const isDiag = tf.cast(tf.eye(b, n), 'bool');
    const diag = tf.sum(tf.where(isDiag, logits, tf.zerosLike(logits)), -1);
    const others = tf.where(isDiag, tf.fill([b, n], -Infinity), tf.where(tf.isNaN(logits), tf.fill([b, n], Infinity), logits));
    return tf.mean(tf.greater(diag, tf.max(others, -1)).toFloat()) as tf.Scalar;
  });
}

/** CLIP loss: scale = exp(logScale); (CE(a->b) + CE(b->a)) / 2. a, b normalised [B, D]. */
export function clipLoss(a: tf.Tensor, b: tf.Tensor, logScale: tf.Tensor): tf.Scalar {
  const logits = tf.mul(tf.matMul(a, b, false, true), tf.exp(logScale));
  return tf.div(tf.add(diagonalCrossEntropy(logits), diagonalCrossEntropy(logits.transpose())), 2) as tf.Scalar;
}

/**
 * InfoNCE between two views: row i of `a` and of `b` [B, D] (not normalised) are two views of item i, every other
 * row of the batch a negative. logits_ij = cos(a_i, b_j) / temperature; L = (CE(a->b) + CE(b->a)) / 2 with the
 * diagonal as labels (the symmetric form; SimCSE's unsupervised loss is the a->b half). The text pretraining's
 * sentence objective (train.mlm `sentence_weight`). With `hard`, a->b also has hard negatives (SimCSE's supervised
 * form): train.mlm makes them by swapping masked tokens for the MLM's own samples (ELECTRA's and DiffCSE's edits).
 */
export function infoNceLoss(a: tf.Tensor, b: tf.Tensor, temperature: number, hard?: { neg: tf.Tensor; valid: boolean[] }): tf.Scalar {
  const unit = (x: tf.Tensor) => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', -1, true), 1e-12));
  const logits = tf.div(tf.matMul(unit(a), unit(b), false, true), temperature);
  if (!hard) return tf.div(tf.add(diagonalCrossEntropy(logits), diagonalCrossEntropy(logits.transpose())), 2) as tf.Scalar;
  // Hard negatives (`neg` [B, D], one made from each row; `valid[k]` false leaves neg_k out): every a_i also scores
  // cos(a_i, neg_k) / temperature for each valid k (all of the batch's, as SimCSE's supervised loss), as extra
  // columns of the a->b direction; b->a is unchanged.
  const n = a.shape[0]!;
  const off = tf.tensor1d(hard.valid.map((v) => (v ? 0 : -1e9)));
  const extra = tf.add(tf.div(tf.matMul(unit(a), unit(hard.neg), false, true), temperature), off.reshape([1, n]));
  const ab = diagonalCrossEntropy(tf.concat([logits, extra], 1));
  return tf.div(tf.add(ab, diagonalCrossEntropy(logits.transpose())), 2) as tf.Scalar;
}

/** c = exp(log(1/0.07)): the KD temperature, fixed (the S-SMKE paper; docs/ml.md). */
export const KD_SCALE = 1 / 0.07;
/** Logit scales are clamped to [0, ln 100] after every step. */
export const LOGIT_SCALE_MAX = Math.log(100);
export const LOGIT_SCALE_INIT = Math.log(1 / 0.07);

/**
 * Contrastive KD. `t` are normalised teacher targets [B, Dt] (constants), `bank`
 * past targets [G, Dt] or null for the in-batch version used at validation.
 * logits = c * s @ [t ; bank]^T, label of row i is i; L = (CE_img + CE_txt) / 2.
 */
export function kdLoss(sImg: tf.Tensor, sTxt: tf.Tensor, t: tf.Tensor, bank: tf.Tensor | null, c = KD_SCALE): tf.Scalar {
  // Targets are teacher outputs and past targets: constants, no gradient flows into them.
  const targets = bank ? tf.concat([t, bank], 0) : t;
  const ce = (s: tf.Tensor) => diagonalCrossEntropy(tf.mul(tf.matMul(s, targets, false, true), c));
  return tf.div(tf.add(ce(sImg), ce(sTxt)), 2) as tf.Scalar;
}

/**
 * A FIFO of the most recent teacher targets. Starts as L2-normalised uniform
 * noise; each push puts the batch in front and drops the oldest rows.
 */
export class MemoryBank {
  private bank: tf.Tensor2D;

  constructor(
    readonly size: number,
    readonly dim: number,
    seed: number,
  ) {
    const rng = new Rng(seed);
    const data = new Float32Array(size * dim);
    for (let i = 0; i < data.length; i++) data[i] = rng.next();
    this.bank = tf.tidy(() => l2rows(tf.tensor2d(data, [size, dim])));
  }

  get tensor(): tf.Tensor2D {
    return this.bank;
  }

  push(t: tf.Tensor): void {
    const next = tf.tidy(() => {
      const rows = Math.min(t.shape[0]!, this.size);
      const fresh = t.slice([0, 0], [rows, this.dim]);
      return (rows === this.size ? fresh : tf.concat([fresh, this.bank.slice([0, 0], [this.size - rows, this.dim])], 0)) as tf.Tensor2D;
    });
    this.bank.dispose();
    this.bank = tf.keep(next);
  }

  async data(): Promise<Float32Array> {
    return (await this.bank.data()) as Float32Array;
  }

  set(data: Float32Array): void {
    if (data.length !== this.size * this.dim) throw new Error(`memory bank of ${this.size}x${this.dim} cannot take ${data.length} values`);
    this.bank.dispose();
    this.bank = tf.keep(tf.tensor2d(data, [this.size, this.dim]));
  }

  dispose(): void {
    this.bank.dispose();
  }
}

function l2rows(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12));
}
