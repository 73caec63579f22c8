import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { mergeTransposeDims, transposeInto, useFastWasmKernels } from '../../src/ml/wasm-kernels.js';

/** out[o] = x[in index of o], written from the definition: the reference the kernels are checked against. */
function naiveTranspose(x: Float32Array, shape: number[], perm: number[]): Float32Array {
  const outShape = perm.map((d) => shape[d]!);
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(x.length);
  const idx = outShape.map(() => 0);
  for (let o = 0; o < out.length; o++) {
    let j = 0;
    idx.forEach((v, k) => (j += v * inStrides[perm[k]!]!));
    out[o] = x[j]!;
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d]! < outShape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

const CASES: [number[], number[]][] = [
  [
    [4, 3],
    [1, 0],
  ],
  [
    [37, 45],
    [1, 0],
  ], // 2-D tiles with ragged edges
  [
    [70, 33],
    [1, 0],
  ],
  [
    [2, 3, 4],
    [0, 2, 1],
  ],
  [
    [2, 3, 4],
    [1, 2, 0],
  ],
  [
    [2, 3, 4],
    [2, 1, 0],
  ],
  [
    [2, 3, 4],
    [0, 1, 2],
  ], // identity permutation
  [
    [2, 5, 3, 4, 6],
    [2, 0, 3, 1, 4],
  ], // attention's qkv split
  [
    [2, 3, 1, 4, 5],
    [2, 0, 3, 1, 4],
  ], // size-1 dimension dropped
  [
    [2, 3, 4, 5],
    [0, 2, 1, 3],
  ],
  [
    [3, 4, 5, 2, 2, 3],
    [0, 1, 3, 2, 4, 5],
  ],
  [
    [1, 1],
    [1, 0],
  ],
  [[7], [0]],
];

describe('wasm kernels', () => {
  it('merges dimensions that stay adjacent', () => {
    expect(mergeTransposeDims([2, 3, 4], [0, 1, 2])).toEqual({ shape: [24], perm: [0] });
    expect(mergeTransposeDims([2, 3, 4, 5], [0, 1, 3, 2])).toEqual({ shape: [6, 4, 5], perm: [0, 2, 1] });
    expect(mergeTransposeDims([2, 3, 4], [2, 0, 1])).toEqual({ shape: [6, 4], perm: [1, 0] });
    expect(mergeTransposeDims([2, 1, 4], [2, 1, 0])).toEqual({ shape: [2, 4], perm: [1, 0] });
  });

  it.each(CASES)('transposeInto %j by %j equals the definition', (shape, perm) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3);
    const out = new Float32Array(n);
    transposeInto(x, out, shape, perm);
    expect(Array.from(out)).toEqual(Array.from(naiveTranspose(x, shape, perm)));
  });

  it('on wasm: transpose, identity and cast give tfjs results (several dtypes), and share no buffer wrongly', async () => {
    await selectBackend('wasm');
    for (const [shape, perm] of CASES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const f = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 10);
      expect(Array.from(tf.transpose(tf.tensor(f, shape), perm).dataSync())).toEqual(Array.from(naiveTranspose(f, shape, perm)));
      const ints = tf.tensor(
        Int32Array.from({ length: n }, (_, i) => i - 5),
        shape,
        'int32',
      );
      const t = tf.transpose(ints, perm);
      expect(t.dtype).toBe('int32');
      expect(Array.from(t.dataSync())).toEqual(Array.from(naiveTranspose(Float32Array.from(ints.dataSync()), shape, perm)));
      const b = tf.transpose(
        tf.tensor(
          Array.from({ length: n }, (_, i) => i % 3 === 0),
          shape,
          'bool',
        ),
        perm,
      );
      expect(b.dtype).toBe('bool');
      expect(Array.from(b.dataSync())).toEqual(
        Array.from(
          naiveTranspose(
            Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0)),
            shape,
            perm,
          ),
        ),
      );
    }
    // A shared buffer outlives the tensor it came from, and int -> float still converts.
    const a = tf.tensor1d([1.5, -2, 3]);
    const c = tf.clone(a);
    const same = a.cast('float32');
    a.dispose();
    expect(Array.from(c.dataSync())).toEqual([1.5, -2, 3]);
    expect(Array.from(same.dataSync())).toEqual([1.5, -2, 3]);
    expect(Array.from(tf.tensor1d([1, 2], 'int32').cast('float32').dataSync())).toEqual([1, 2]);
    expect(Array.from(tf.tensor1d([1.7, -2.2]).cast('int32').dataSync())).toEqual([1, -2]);
    // Variables assign new buffers: a clone taken before an assign keeps the old values.
    const v = tf.variable(tf.tensor1d([1, 2]));
    const before = tf.clone(v);
    v.assign(tf.tensor1d([5, 6]));
    expect(Array.from(before.dataSync())).toEqual([1, 2]);
    expect(Array.from(v.dataSync())).toEqual([5, 6]);
  });

  it("on wasm: gradients through the replaced kernels equal those through tfjs's own", async () => {
    await selectBackend('wasm');
    const x = tf.tensor(
      Float32Array.from({ length: 2 * 5 * 3 * 2 * 4 }, (_, i) => Math.cos(i)),
      [2, 5, 3, 2, 4],
    );
    const w = tf.tensor(
      Float32Array.from({ length: 4 * 6 }, (_, i) => Math.sin(i)),
      [4, 6],
    );
    const f = (xx: tf.Tensor) => tf.sum(tf.square(tf.matMul(tf.transpose(xx, [2, 0, 3, 1, 4]).reshape([-1, 4]), w).transpose()));
    const grads: number[][] = [];
    for (const on of [false, true]) {
      useFastWasmKernels(on);
      grads.push(Array.from(tf.grad(f)(x).dataSync()));
    }
    useFastWasmKernels(true);
    expect(grads[1]).toEqual(grads[0]);
  });
});
