// The fused LayerNorm kernels (src/ml/layer-norm.ts, registered on wasm) must
// give what the composite tfjs ops give, values and all three gradients, and
// their backward pass must be the derivative of their forward pass (checked by
// finite differences in float64, independent of tfjs).
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { LAYER_NORM_KERNEL, layerNormBackwardInto, layerNormForwardInto } from '../../src/ml/layer-norm.js';
import { layerNorm } from '../../src/ml/layers.js';
import { ParamStore } from '../../src/ml/params.js';
import { useFastWasmKernels } from '../../src/ml/wasm-kernels.js';

const wave = (n: number, a: number, b: number): Float64Array => Float64Array.from({ length: n }, (_, i) => Math.sin(i * a + b) * (1 + (i % 7)));

describe('fused LayerNorm', () => {
  it.each([
    [1, 4, 1e-5],
    [3, 5, 1e-6],
    [4, 48, 1e-12],
  ])('backward is the derivative of forward (%i rows of %i, eps %s; finite differences in float64)', (rows, d, eps) => {
    const x = wave(rows * d, 0.7, 0.1);
    const gamma = wave(d, 1.3, 0.5);
    const beta = wave(d, 0.4, 2);
    const w = wave(rows * d, 0.9, 1); // loss = sum(y * w), so dy = w
    const loss = (xx: Float64Array, g: Float64Array, b: Float64Array): number => {
      const y = new Float64Array(rows * d);
      layerNormForwardInto(xx, g, b, d, eps, y, new Float64Array(rows), new Float64Array(rows));
      return y.reduce((s, v, i) => s + v * w[i]!, 0);
    };
    const mean = new Float64Array(rows);
    const rstd = new Float64Array(rows);
    layerNormForwardInto(x, gamma, beta, d, eps, new Float64Array(rows * d), mean, rstd);
    const dx = new Float64Array(rows * d);
    const dg = new Float64Array(d);
    const db = new Float64Array(d);
    layerNormBackwardInto(w, x, gamma, mean, rstd, d, dx, dg, db);
    const h = 1e-6;
    const numeric = (v: Float64Array, i: number): number => {
      const up = Float64Array.from(v);
      const down = Float64Array.from(v);
      up[i]! += h;
      down[i]! -= h;
      const at = (arr: Float64Array) => (v === x ? loss(arr, gamma, beta) : v === gamma ? loss(x, arr, beta) : loss(x, gamma, arr));
      return (at(up) - at(down)) / (2 * h);
    };
    for (let i = 0; i < x.length; i++) expect(dx[i]!).toBeCloseTo(numeric(x, i), 4);
    for (let j = 0; j < d; j++) {
      expect(dg[j]!).toBeCloseTo(numeric(gamma, j), 4);
      expect(db[j]!).toBeCloseTo(numeric(beta, j), 4);
    }
  });

  it('on wasm: values and gradients (x, gamma, beta) equal the composite ops, for rank 2 and 3, constant rows included', async () => {
    await selectBackend('wasm');
    for (const shape of [
      [3, 5],
      [2, 7, 48],
      [1024, 48],
    ]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const d = shape.at(-1)!;
      const xs = Float32Array.from(wave(n, 0.37, 0.2));
      xs.fill(0.25, 0, d); // a constant row: variance 0, normalised by eps alone
      const x = tf.tensor(xs, shape);
      const w = tf.tensor(Float32Array.from(wave(n, 1.1, 0.3)), shape);
      const ps = new ParamStore(7);
      ps.add('ln.g', [d], { kind: 'normal', std: 1 });
      ps.add('ln.b', [d], { kind: 'normal', std: 1 });
      const results: { y: number[]; dx: number[]; dg: number[]; db: number[] }[] = [];
      for (const fused of [false, true]) {
        useFastWasmKernels(fused);
        expect(tf.getKernel(LAYER_NORM_KERNEL, 'wasm') !== undefined).toBe(fused);
        const y = Array.from(layerNorm(ps, 'ln', x, 1e-6).dataSync());
        const lossOf = (xx: tf.Tensor) => tf.sum(tf.mul(layerNorm(ps, 'ln', xx, 1e-6), w)) as tf.Scalar;
        const dx = Array.from(tf.grad(lossOf)(x).dataSync());
        const { grads } = tf.variableGrads(() => lossOf(x), [ps.get('ln.g'), ps.get('ln.b')]);
        results.push({ y, dx, dg: Array.from(grads[ps.get('ln.g').name]!.dataSync()), db: Array.from(grads[ps.get('ln.b').name]!.dataSync()) });
      }
      useFastWasmKernels(true);
      const [composite, fused] = results as [(typeof results)[0], (typeof results)[0]];
      const close = (a: number[], b: number[], tol: number) => {
        expect(a.length).toBe(b.length);
        const scale = Math.max(1, ...b.map(Math.abs));
        const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
        expect(worst / scale, `worst difference ${worst} at scale ${scale}`).toBeLessThan(tol);
      };
      close(fused.y, composite.y, 1e-5);
      close(fused.dx, composite.dx, 1e-4);
      close(fused.dg, composite.dg, 1e-5);
      close(fused.db, composite.db, 1e-5);
    }
  });

  it('is not used where it is not registered (cpu): the composite ops run', async () => {
    await selectBackend('cpu');
    expect(tf.getKernel(LAYER_NORM_KERNEL, 'cpu')).toBeUndefined();
    const ps = new ParamStore(1);
    ps.add('ln.g', [4], { kind: 'const', value: 1 });
    ps.add('ln.b', [4], { kind: 'const', value: 0 });
    const y = layerNorm(ps, 'ln', tf.tensor2d([[1, 2, 3, 4]]), 1e-5).dataSync();
    // (x - 2.5) / sqrt(1.25 + 1e-5)
    const r = 1 / Math.sqrt(1.25 + 1e-5);
    Array.from(y).forEach((v, i) => expect(v).toBeCloseTo((i + 1 - 2.5) * r, 5));
  });
});
