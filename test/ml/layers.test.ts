import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { embed, gelu, l2normalize, oneHotFloat } from '../../src/ml/layers.js';

describe.each(['cpu', 'wasm'])('layers on %s', (backend) => {
  it('embedding lookup returns the table rows and has a gradient', async () => {
    await selectBackend(backend);
    const table = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const ids = tf.tensor2d(
      [
        [0, 2],
        [1, 1],
      ],
      [2, 2],
      'int32',
    );
    expect(embed(table, ids).arraySync()).toEqual([
      [
        [1, 2],
        [5, 6],
      ],
      [
        [3, 4],
        [3, 4],
      ],
    ]);
    // d/dtable sum(embed) counts how often each row is used
    const g = tf.grad((t: tf.Tensor) => tf.sum(embed(t, ids)))(table);
    expect(g.arraySync()).toEqual([
      [1, 1],
      [2, 2],
      [1, 1],
    ]);
    expect(Array.from(oneHotFloat(tf.tensor1d([1], 'int32'), 3).dataSync())).toEqual([0, 1, 0]);
  });

  it('GELU (erf) and L2 normalisation', async () => {
    await selectBackend(backend);
    const y = gelu(tf.tensor1d([-1, 0, 1])).dataSync();
    expect(y[0]).toBeCloseTo(-0.158655, 5);
    expect(y[1]).toBe(0);
    expect(y[2]).toBeCloseTo(0.841345, 5);
    expect(Array.from(l2normalize(tf.tensor2d([[3, 4]])).dataSync())).toEqual([0.6, 0.8].map((v) => Math.fround(v)));
  });
});
