// The data2vec objective for images (Baevski et al., data2vec 2022 and
// data2vec 2.0 2023; the paper's image encoder is Data2Vec2): a student sees
// the image with some patches replaced by a mask token and regresses, at the
// hidden patches, a target built by a teacher that sees the whole image. The
// teacher is an exponential moving average (EMA) of the student. Its target is
// contextual and learned, not pixels: each of the teacher's top K blocks'
// MLP outputs (before the residual add) is instance-normalised over the
// tokens, the K are averaged, and the average is layer-normalised over
// features (data2vec 2.0's IN -> AVG -> LN). data2vec 2.0 also regresses the
// mean of the patch targets from the student's CLS token (its `cls_loss`),
// which trains the CLS as a summary of the image; here that mean is taken
// before the instance norm (which would remove it).

import * as tf from '@tensorflow/tfjs';
import type { BlockOutput } from './layers.js';
import type { ParamStore } from './params.js';

/** [B, T, D] -> each feature normalised to mean 0, variance 1 over the T tokens of its example (PyTorch's instance_norm, no affine). */
export function instanceNormTokens(x: tf.Tensor, eps = 1e-5): tf.Tensor {
  const { mean, variance } = tf.moments(x, 1, true);
  return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps)));
}

/** [.., D] -> each row normalised over its features (layer norm without affine parameters). */
export function layerNormPlain(x: tf.Tensor, eps = 1e-5): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps)));
}

export interface Data2vecTargets {
  /** [B, N, D]: one target per patch. */
  patches: tf.Tensor;
  /** [B, D]: the CLS token's target. */
  cls: tf.Tensor;
}

/**
 * The teacher's targets from its blocks' outputs (first block first), on the
 * patch tokens only (the teacher's CLS is not a target): the MLP outputs of the
 * last `topK` blocks, each instance-normalised over the patches, averaged, then
 * layer-normalised over the features. The CLS target is the patches' mean
 * feature: taken from the raw MLP outputs (each layer-normalised, averaged,
 * layer-normalised), because the instance norm removes exactly that mean.
 */
export function data2vecTargets(blocks: BlockOutput[], topK: number): Data2vecTargets {
  if (topK < 1 || topK > blocks.length) throw new Error(`data2vec top_k must be between 1 and the encoder's ${blocks.length} blocks, got ${topK}`);
  const top = blocks.slice(blocks.length - topK).map((b) => b.mlp.slice([0, 1, 0], [-1, -1, -1]));
  const average = (xs: tf.Tensor[]) => (xs.length === 1 ? xs[0]! : tf.div(tf.addN(xs), xs.length));
  const patches = layerNormPlain(average(top.map((x) => instanceNormTokens(x))));
  const cls = layerNormPlain(average(top.map((x) => layerNormPlain(tf.mean(x, 1)))));
  return { patches, cls };
}

/**
 * The EMA decay at update `step` of `total`: linear from `start` to `end`
 * (data2vec anneals 0.999 -> 0.9999 over its first updates, then holds it).
 */
export function emaDecay(step: number, total: number, start: number, end: number): number {
  if (total <= 1) return end;
  const t = Math.min(1, Math.max(0, step / (total - 1)));
  return start + (end - start) * t;
}

/** teacher <- decay * teacher + (1 - decay) * student, for every teacher parameter (same names in both stores). */
export function emaUpdate(teacher: ParamStore, student: ParamStore, decay: number): void {
  tf.tidy(() => {
    for (const name of teacher.names()) {
      const t = teacher.get(name);
      t.assign(tf.add(tf.mul(t, decay), tf.mul(student.get(name), 1 - decay)));
    }
  });
}

/** Copies the student's values into a teacher store defined with the same names, and freezes it. */
export function initTeacher(teacher: ParamStore, student: ParamStore): void {
  for (const name of teacher.names()) teacher.get(name).assign(student.get(name));
  teacher.setTrainable('', false);
}

/**
 * The data2vec loss: mean squared error (data2vec 2.0's image loss) between
 * the student's predictions and the patch targets over the hidden patches
 * (`mask` [B, N], 1 = hidden), plus `clsWeight` times the CLS prediction's
 * error. `pred` is [B, N+1, D], CLS first.
 */
export function data2vecLoss(pred: tf.Tensor, target: Data2vecTargets, mask: tf.Tensor, clsWeight: number): tf.Scalar {
  const patchPred = pred.slice([0, 1, 0], [-1, -1, -1]);
  const err = tf.mean(tf.square(tf.sub(patchPred, target.patches)), 2);
  const patchLoss = tf.div(tf.sum(tf.mul(err, mask)), tf.sum(mask));
  if (clsWeight <= 0) return patchLoss as tf.Scalar;
  const clsPred = pred.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]);
  const clsLoss = tf.mean(tf.square(tf.sub(clsPred, target.cls)));
  return tf.add(patchLoss, tf.mul(clsLoss, clsWeight)) as tf.Scalar;
}
