// Layer normalisation over the last axis as two fused kernels, forward and
// backward, for backends where every tfjs kernel has a fixed cost that dwarfs
// the arithmetic of mini-sized tensors (wasm: ~100 us per kernel). Composed of
// tfjs ops, one LayerNorm is ~10 kernels forward and ~25 backward; a
// [1024, 48] one cost 6.7 ms of CPU forward and backward on wasm, these loops
// 0.7 ms. src/ml/wasm-kernels.ts registers the kernels; `layerNorm` in
// ./layers.ts uses them where they are registered and the composite ops
// elsewhere (GPU backends, where a kernel is a dispatch and the composite is
// fine). Sums run in float64, so the fused result is at least as exact.

/** Forward: y = (x - mean) * rstd * gamma + beta per row; also writes each row's mean and rstd = 1 / sqrt(var + eps) for the backward pass. */
export const LAYER_NORM_KERNEL = 'SmkeLayerNorm';
/** Backward: dx, dgamma, dbeta from dy, x, gamma and the forward's mean and rstd. */
export const LAYER_NORM_GRAD_KERNEL = 'SmkeLayerNormGrad';

type Out = { [i: number]: number; length: number };

/** `x` holds rows of `d` features; the variance is the biased one (divided by d), as torch's LayerNorm and tf.moments. */
export function layerNormForwardInto(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  d: number,
  eps: number,
  y: Out,
  mean: Out,
  rstd: Out,
): void {
  const rows = x.length / d;
  for (let r = 0, o = 0; r < rows; r++, o += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[o + j]!;
    const m = s / d;
    let v = 0;
    for (let j = 0; j < d; j++) {
      const c = x[o + j]! - m;
      v += c * c;
    }
    const inv = 1 / Math.sqrt(v / d + eps);
    mean[r] = m;
    rstd[r] = inv;
    for (let j = 0; j < d; j++) y[o + j] = (x[o + j]! - m) * inv * gamma[j]! + beta[j]!;
  }
}

/**
 * With xhat = (x - mean) * rstd and g = dy * gamma:
 * dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)), dgamma = sum_rows(dy * xhat), dbeta = sum_rows(dy).
 */
export function layerNormBackwardInto(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  d: number,
  dx: Out,
  dgamma: Out,
  dbeta: Out,
): void {
  const rows = x.length / d;
  const dg = new Float64Array(d);
  const db = new Float64Array(d);
  for (let r = 0, o = 0; r < rows; r++, o += d) {
    const m = mean[r]!;
    const inv = rstd[r]!;
    let sumG = 0;
    let sumGx = 0;
    for (let j = 0; j < d; j++) {
      const xhat = (x[o + j]! - m) * inv;
      const g = dy[o + j]! * gamma[j]!;
      sumG += g;
      sumGx += g * xhat;
      dg[j] = dg[j]! + dy[o + j]! * xhat;
      db[j] = db[j]! + dy[o + j]!;
    }
    const meanG = sumG / d;
    const meanGx = sumGx / d;
    for (let j = 0; j < d; j++) {
      const xhat = (x[o + j]! - m) * inv;
      dx[o + j] = inv * (dy[o + j]! * gamma[j]! - meanG - xhat * meanGx);
    }
  }
  for (let j = 0; j < d; j++) {
    dgamma[j] = dg[j]!;
    dbeta[j] = db[j]!;
  }
}
