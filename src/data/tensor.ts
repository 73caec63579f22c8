// The thin step from loader batches to tfjs tensors. tfjs is passed in (the
// caller has already chosen and initialised a backend), never imported here.

import type * as tfjs from '@tensorflow/tfjs';
import type { ImageBatch } from './loader.js';

export interface TensorBatch {
  /** [n, h, w, 3] float32. */
  images: tfjs.Tensor4D;
  /** [n] int32 (image-class only). */
  labels?: tfjs.Tensor1D;
}

export function toTensor(tf: typeof tfjs, batch: ImageBatch): TensorBatch {
  const images = tf.tensor4d(batch.images, [batch.size, batch.height, batch.width, 3], 'float32');
  return batch.labels ? { images, labels: tf.tensor1d(batch.labels, 'int32') } : { images };
}
