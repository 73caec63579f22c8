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

type Result = { shape: number[]; dtype: string; values: number[] };

describe('wasm slice, split, unpack and leading-axis sum', () => {
  /** The same op with tfjs's own kernels and with smke's, as plain arrays with shape and dtype. */
  const both = (f: () => tf.Tensor | tf.Tensor[]): [Result[], Result[]] =>
    [false, true].map((on) => {
      useFastWasmKernels(on);
      const r = f();
      const list = Array.isArray(r) ? r : [r];
      const out = list.map((t) => ({ shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) }));
      tf.dispose(list);
      return out;
    }) as [Result[], Result[]];
  const tensorOf = (shape: number[], dtype: 'float32' | 'int32' | 'bool') => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (dtype === 'bool')
      return tf.tensor(
        Array.from({ length: n }, (_, i) => i % 3 === 1),
        shape,
        'bool',
      );
    return tf.tensor(
      Array.from({ length: n }, (_, i) => (dtype === 'int32' ? i - 7 : Math.sin(i) * 3)),
      shape,
      dtype,
    );
  };

  it('slice: contiguous and strided, ranks 1 to 5, three dtypes, empty, and -1 sizes, as tfjs', async () => {
    await selectBackend('wasm');
    const cases: [number[], number[], number[]][] = [
      [[10], [3], [4]],
      [
        [6, 5],
        [2, 0],
        [3, 5],
      ], // contiguous rows
      [
        [6, 5],
        [1, 1],
        [4, 3],
      ], // strided
      [
        [4, 5, 6],
        [1, 2, 0],
        [2, 3, 6],
      ],
      [
        [4, 5, 6],
        [0, 0, 2],
        [4, 5, 3],
      ],
      [
        [3, 2, 4, 5],
        [1, 0, 1, 1],
        [2, 2, 2, 3],
      ],
      [
        [3, 32, 4, 17, 12],
        [1, 0, 0, 0, 0],
        [1, 32, 4, 17, 12],
      ], // one of attention's q, k, v
      [
        [2, 3, 4, 5, 6],
        [1, 1, 1, 1, 1],
        [1, 2, 3, 4, 5],
      ],
      [
        [4, 5],
        [1, 2],
        [-1, -1],
      ],
      [
        [4, 5],
        [2, 1],
        [0, 3],
      ],
    ];
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      for (const [shape, begin, size] of cases) {
        const x = tensorOf(shape, dtype);
        const [theirs, ours] = both(() => tf.slice(x, begin, size));
        expect(ours, `${dtype} ${JSON.stringify([shape, begin, size])}`).toEqual(theirs);
      }
    }
    useFastWasmKernels(true);
  });

  it('split and unpack: sizes with -1, every axis, negative axes, as tfjs', async () => {
    await selectBackend('wasm');
    const x = tensorOf([4, 6, 5], 'float32');
    for (const [sizes, axis] of [
      [[1, 3], 0],
      [[2, -1, 1], 1],
      [5, 2],
      [[2, 2, 1], -1],
    ] as [number | number[], number][]) {
      const [theirs, ours] = both(() => tf.split(x, sizes, axis));
      expect(ours, JSON.stringify([sizes, axis])).toEqual(theirs);
    }
    const flat = tensorOf([138], 'float32');
    const [a, b] = both(() => tf.split(flat, [7, 60, 1, 70]));
    expect(b).toEqual(a);
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      const y = tensorOf([3, 4, 2, 5], dtype);
      for (const axis of [0, 1, 2, 3, -1]) {
        const [theirs, ours] = both(() => tf.unstack(y, axis));
        expect(ours, `${dtype} axis ${axis}`).toEqual(theirs);
      }
    }
    useFastWasmKernels(true);
  });

  it('sum over leading axes equals tfjs (to float32 rounding), with and without keepDims; other axes are tfjs own', async () => {
    await selectBackend('wasm');
    const x = tensorOf([32, 17, 48], 'float32');
    for (const [axes, keep] of [
      [[0], false],
      [[0, 1], false],
      [[0, 1], true],
      [[1, 0], false],
      [[0], true],
      [[2], false],
      [[1], false],
      [[0, 2], false],
      [[0, 1, 2], false],
    ] as [number[], boolean][]) {
      const [theirs, ours] = both(() => tf.sum(x, axes, keep));
      expect(ours[0]!.shape, JSON.stringify(axes)).toEqual(theirs[0]!.shape);
      ours[0]!.values.forEach((v, i) => expect(v).toBeCloseTo(theirs[0]!.values[i]!, 3));
    }
    const ints = tensorOf([5, 4], 'int32');
    const [ti, oi] = both(() => tf.sum(ints, 0));
    expect(oi).toEqual(ti);
    useFastWasmKernels(true);
  });

  it('gradients through slice, split, unstack and sum equal those through tfjs own kernels', async () => {
    await selectBackend('wasm');
    const x = tensorOf([3, 8, 6], 'float32');
    const f = (xx: tf.Tensor) => {
      const [q, k] = tf.unstack(xx.reshape([3, 2, 4, 6]), 1);
      const parts = tf.split(q!, [1, 2, 3], 2);
      return tf.sum(tf.mul(tf.sum(tf.mul(parts[2]!, tf.slice(k!, [0, 0, 3], [3, 4, 3])), [0, 1]), tf.tensor1d([1, -2, 3])));
    };
    const [theirs, ours] = both(() => tf.grad(f)(x));
    ours[0]!.values.forEach((v, i) => expect(v).toBeCloseTo(theirs[0]!.values[i]!, 5));
    useFastWasmKernels(true);
  });
});
