// Tiny model and batch builders shared by the ml tests.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/data/rng.js';
import type { SmkeConfig } from '../../src/ml/smke.js';
import type { SmkeBatch } from '../../src/ml/smke-train.js';
import { l2normalize } from '../../src/ml/layers.js';

export const TINY: SmkeConfig = {
  image: { imageSize: 8, patchSize: 4, channels: 3, dim: 8, depth: 1, heads: 2, mlpRatio: 2, eps: 1e-6, layerScale: 0.1 },
  text: { vocabSize: 12, maxLen: 6, dim: 8, depth: 1, heads: 2, mlpRatio: 2, eps: 1e-12 },
  sharedHeads: 2,
  sharedMlpRatio: 2,
  teacherDim: 6,
};

export function tinyBatch(seed: number, b = 3, cfg: SmkeConfig = TINY): SmkeBatch {
  const rng = new Rng(seed);
  const s = cfg.image.imageSize;
  const img = Float32Array.from({ length: b * s * s * 3 }, () => rng.normal());
  const t = cfg.text.maxLen;
  const ids: number[] = [],
    mask: number[] = [];
  for (let i = 0; i < b; i++) {
    const len = 2 + rng.int(t - 1); // at least CLS + one token; some rows padded
    for (let j = 0; j < t; j++) {
      ids.push(j < len ? 1 + rng.int(cfg.text.vocabSize - 1) : 0);
      mask.push(j < len ? 1 : 0);
    }
  }
  const teacher = Float32Array.from({ length: b * cfg.teacherDim }, () => rng.normal());
  return {
    images: tf.tensor4d(img, [b, s, s, 3]),
    text: { ids: tf.tensor2d(ids, [b, t], 'int32'), mask: tf.tensor2d(mask, [b, t], 'int32') },
    teacher: tf.tidy(() => l2normalize(tf.tensor2d(teacher, [b, cfg.teacherDim]))) as tf.Tensor2D,
  };
}

export function disposeBatch(b: SmkeBatch): void {
  tf.dispose([b.images, b.text.ids, b.text.mask, b.teacher]);
}
