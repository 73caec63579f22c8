// SimCLR's objective (Chen et al. 2020, NT-Xent), for the image encoder's
// unimodal pretraining: two augmented views of each image in a batch, each
// view's projection (a small MLP on the encoder's CLS token) l2-normalised;
// every view must pick out its partner among the 2B - 1 other views of the
// batch by cosine similarity / temperature (a softmax cross-entropy). What
// the views share (the objects' colours, shapes, sizes and positions, with
// no colour jitter and no flip) is what the CLS has to carry; what the
// augmentation changes (the crop) is what it learns to ignore.

import * as tf from '@tensorflow/tfjs';

/** Rows scaled to unit l2 norm (eps guards a zero row). */
export function l2Normalize(x: tf.Tensor, eps = 1e-8): tf.Tensor {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), -1, true), eps)));
}

/**
 * NT-Xent: `z1` [B, P] and `z2` [B, P] are the projections of the two views
 * (row i of each from image i). With u = normalise([z1; z2]) (2B rows), the
 * loss is the mean over the 2B rows a of
 *   -log( exp(u_a.u_pos(a) / t) / sum_{c != a} exp(u_a.u_c / t) ),
 * pos(a) = a + B for a < B, a - B otherwise.
 */
export function ntXentLoss(z1: tf.Tensor, z2: tf.Tensor, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const b = z1.shape[0]!;
    if (b < 2) throw new Error(`NT-Xent needs at least 2 images per batch, got ${b}`);
    const u = l2Normalize(tf.concat([z1, z2], 0));
    const n = 2 * b;
    // Each row's own similarity is taken out of the softmax by a large negative.
    const self = tf.mul(tf.eye(n), -1e9);
    const logits = tf.add(tf.div(tf.matMul(u, u, false, true), temperature), self);
    const pos = Array.from({ length: n }, (_, a) => (a < b ? a + b : a - b));
    const y = tf.oneHot(tf.tensor1d(pos, 'int32'), n).toFloat();
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), y), 1))) as tf.Scalar;
  });
}

/** In-batch top-1 accuracy of the same task (the partner has the highest similarity among the other 2B - 1 views), for monitoring. */
export function ntXentAccuracy(z1: tf.Tensor, z2: tf.Tensor): number {
  const b = z1.shape[0]!;
  const n = 2 * b;
  const sims = tf.tidy(() => {
    const u = l2Normalize(tf.concat([z1, z2], 0));
    return tf.add(tf.matMul(u, u, false, true), tf.mul(tf.eye(n), -1e9));
  });
  const s = sims.dataSync();
  sims.dispose();
  let hit = 0;
  for (let a = 0; a < n; a++) {
    let best = -1;
    for (let c = 0; c < n; c++) if (best < 0 || s[a * n + c]! > s[a * n + best]!) best = c;
    if (best === (a < b ? a + b : a - b)) hit++;
  }
  return hit / n;
}
