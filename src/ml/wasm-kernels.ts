// Kernel replacements for the wasm backend, where tfjs 4.22's own are slow
// for the small tensors of mini training (measured with bench/ml.mjs, which
// runs a step with and without them).
//
// Transpose: tfjs's wasm kernel is fast for 3-D and 4-D permutations but slow
// for a plain matrix transpose (a [1024, 48] one cost as much CPU as a
// [1024, 48] x [48, 144] matMul, and 20x an add of the same size: it writes
// with a stride of a whole row) and very slow for 5-D ones (attention's qkv
// split: 10 ms for 150k floats). matMul2d's gradient transposes activations
// twice per linear layer. Here: dimensions that stay adjacent are merged;
// a 2-D transpose is copied in 32 x 32 tiles, a 5-D+ one by a JS loop over
// the output with one strided read per element; 3-D and 4-D go to tfjs.
//
// Slice, SplitV and Unpack: tfjs's wasm Slice copies its whole input out of
// the heap (readSync) before taking the slice, and SplitV and Unpack call it
// once per output: AdamW's split of one flat vector into 60 parameters copied
// 60 times 138k floats (68 ms), an attention qkv unstack 4.6 ms. Here the
// slice reads a view of the heap: contiguous slices are one copy, others one
// copy per innermost run.
//
// Sum over leading axes (bias and LayerScale gradients: [1024, 144] over axis
// 0): tfjs transposes with its slow 2-D transpose first (1.6 ms against 58 us
// over the last axis). Here: a running sum of rows. Other axis sets go to tfjs.
//
// LayerNorm forward and backward (./layer-norm.ts): one kernel each instead
// of ~35 tfjs kernels per normalisation and step.
//
// Identity and same-dtype Cast: while gradients are recorded, tfjs clones every tensor an op saves for its
// backward pass (engine.saveTensorsForBackwardMode -> Identity), and
// `x.toFloat()` on a float tensor is a Cast. The wasm backend's kernels for
// both copy the whole buffer; the cpu and webgl backends share it (incRef),
// which is safe because no kernel writes into its inputs and a variable's
// assign swaps its buffer rather than writing into it. A mini S-SMKE step ran
// ~780 such copies (bench/ml.mjs). These kernels do what the cpu backend does.

import * as tf from '@tensorflow/tfjs';
import { LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL, layerNormBackwardInto, layerNormForwardInto } from './layer-norm.js';

type KernelFunc = tf.KernelConfig['kernelFunc'];
interface WasmBackend {
  incRef(dataId: tf.DataId): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

const REPLACED = ['Identity', 'Cast', 'Transpose', 'Slice', 'SplitV', 'Unpack', 'Sum'] as const;
let originals: Record<(typeof REPLACED)[number], tf.KernelConfig> | undefined;

/**
 * Shape and permutation with size-1 dimensions dropped and runs of input
 * dimensions that stay adjacent and in order merged: [B, T, H, D] with perm
 * [0, 2, 1, 3] stays rank 4, [B, T, D] -> [B, D, T] stays rank 3, but
 * [B, T, 3, H, Dh] -> [3, B, H, T, Dh] keeps Dh as one contiguous run.
 */
export function mergeTransposeDims(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const keep = perm.filter((d) => shape[d]! !== 1);
  // Group output-order dims into runs of consecutive input dims.
  const runs: number[][] = [];
  for (const d of keep) {
    const last = runs.at(-1);
    if (last && last.at(-1)! + 1 === d) last.push(d);
    else runs.push([d]);
  }
  // Input order of the runs gives the merged input shape; their output order the perm.
  const byInput = runs.map((r, i) => ({ first: r[0]!, size: r.reduce((s, d) => s * shape[d]!, 1), out: i })).sort((a, b) => a.first - b.first);
  const mergedShape = byInput.map((r) => r.size);
  const mergedPerm = runs.map((_, outIdx) => byInput.findIndex((r) => r.out === outIdx));
  return { shape: mergedShape, perm: mergedPerm };
}

/** out[...] = x[perm(...)], both row-major flat arrays of the same length. */
export function transposeInto(x: ArrayLike<number>, out: { [i: number]: number; length: number }, shape: readonly number[], perm: readonly number[]): void {
  const { shape: s, perm: p } = mergeTransposeDims(shape, perm);
  const r = s.length;
  if (r <= 1) {
    for (let i = 0; i < out.length; i++) out[i] = x[i]!;
    return;
  }
  if (r === 2) {
    // [m, n] -> [n, m] in 32 x 32 tiles, so neither side walks memory with a large stride.
    const m = s[0]!,
      n = s[1]!,
      T = 32;
    for (let i0 = 0; i0 < m; i0 += T) {
      const i1 = Math.min(m, i0 + T);
      for (let j0 = 0; j0 < n; j0 += T) {
        const j1 = Math.min(n, j0 + T);
        for (let j = j0; j < j1; j++) for (let i = i0, o = j * m + i0; i < i1; i++, o++) out[o] = x[i * n + j]!;
      }
    }
    return;
  }
  const inStride = new Array<number>(r);
  inStride[r - 1] = 1;
  for (let d = r - 2; d >= 0; d--) inStride[d] = inStride[d + 1]! * s[d + 1]!;
  const outShape = p.map((d) => s[d]!);
  const stride = p.map((d) => inStride[d]!);
  const n = outShape[r - 1]!,
    inner = stride[r - 1]!;
  const idx = new Array<number>(r - 1).fill(0);
  let base = 0;
  for (let o = 0; o < out.length; o += n) {
    for (let i = 0, j = base; i < n; i++, j += inner) out[o + i] = x[j]!;
    // Odometer over the outer output dims.
    for (let d = r - 2; d >= 0; d--) {
      base += stride[d]!;
      if (++idx[d]! < outShape[d]!) break;
      base -= stride[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}

/** out = x[begin : begin + size], reading x through a view of the heap. */
function sliceOf(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  // Views are taken after makeOutput: an allocation may grow (and move) the heap.
  sliceInto(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out));
  return out;
}

/** Row-major slice of x (of `shape`) at `begin` of `size`, copied as runs of its innermost dimension. */
export function sliceInto(
  x: Float32Array | Int32Array | Uint8Array,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  out: Float32Array | Int32Array | Uint8Array,
): void {
  const r = shape.length;
  if (size.some((d) => d === 0)) return;
  if (r === 0) {
    out[0] = x[0]!;
    return;
  }
  const stride = new Array<number>(r);
  stride[r - 1] = 1;
  for (let d = r - 2; d >= 0; d--) stride[d] = stride[d + 1]! * shape[d + 1]!;
  // Trailing dimensions taken whole join the innermost run.
  let k = r - 1;
  while (k > 0 && begin[k] === 0 && size[k] === shape[k]) k--;
  const run = size.slice(k).reduce((a, b) => a * b, 1);
  const idx = new Array<number>(k).fill(0);
  let o = 0;
  for (;;) {
    let at = begin[k]! * stride[k]!;
    for (let d = 0; d < k; d++) at += (begin[d]! + idx[d]!) * stride[d]!;
    out.set(x.subarray(at, at + run), o);
    o += run;
    let d = k - 1;
    for (; d >= 0; d--) {
      if (++idx[d]! < size[d]!) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

/** out[j] = sum over the rows i of x[i * out.length + j] (accumulated in float64). */
export function sumLeadingInto(x: ArrayLike<number>, rows: number, out: { [i: number]: number; length: number }): void {
  const n = out.length;
  const acc = new Float64Array(n);
  for (let i = 0, at = 0; i < rows; i++, at += n) for (let j = 0; j < n; j++) acc[j] = acc[j]! + x[at + j]!;
  for (let j = 0; j < n; j++) out[j] = acc[j]!;
}

function share(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  (backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Swaps a kernel's function, keeping tfjs's setupFunc (it binds the wasm functions the original needs when the backend starts). */
function replace(original: tf.KernelConfig, kernelFunc: KernelFunc): void {
  tf.unregisterKernel(original.kernelName, 'wasm');
  tf.registerKernel({ ...original, kernelFunc });
}

/** These kernels (on) or tfjs's own (off, for side-by-side benchmarks). Call after the wasm backend is imported. */
export function useFastWasmKernels(on: boolean): void {
  if (!originals) {
    const get = (name: string) => {
      const k = tf.getKernel(name, 'wasm');
      if (!k) throw new Error('the wasm backend is not registered');
      return k;
    };
    originals = Object.fromEntries(REPLACED.map((n) => [n, get(n)])) as Record<(typeof REPLACED)[number], tf.KernelConfig>;
  }
  const o = {
    identity: originals.Identity.kernelFunc,
    cast: originals.Cast.kernelFunc,
    transpose: originals.Transpose.kernelFunc,
    slice: originals.Slice.kernelFunc,
    splitV: originals.SplitV.kernelFunc,
    unpack: originals.Unpack.kernelFunc,
    sum: originals.Sum.kernelFunc,
  };
  if (!on) {
    for (const k of Object.values(originals)) replace(k, k.kernelFunc);
    for (const name of [LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL]) if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    return;
  }
  registerLayerNormKernels();
  replace(originals.Transpose, (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string' || x.dtype === 'complex64') return o.transpose(args);
    const perm = (args.attrs as { perm: number[] }).perm;
    // tfjs's kernel is fast once the permutation is 3-D or 4-D after merging
    // (measured: [B, T, H, Dh] -> [B, H, T, Dh] 28 us vs 224 us here), slow for 2-D and 5-D and up.
    const rank = mergeTransposeDims(x.shape, perm).shape.length;
    if (rank === 3 || rank === 4) return o.transpose(args);
    const backend = args.backend as WasmBackend;
    const out = backend.makeOutput(
      perm.map((d) => x.shape[d]!),
      x.dtype,
    );
    // Views are taken after makeOutput: an allocation may grow (and move) the heap.
    transposeInto(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), x.shape, perm);
    return out;
  });
  const numeric = (t: tf.TensorInfo): boolean => t.dtype === 'float32' || t.dtype === 'int32' || t.dtype === 'bool';
  replace(originals.Slice, (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!numeric(x)) return o.slice(args);
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [b, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    return sliceOf(args.backend as WasmBackend, x, b!, sz!);
  });
  replace(originals.SplitV, (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!numeric(x)) return o.splitV(args);
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const begin = x.shape.map(() => 0);
    return sizes.map((n) => {
      const size = x.shape.slice();
      size[ax] = n;
      const out = sliceOf(args.backend as WasmBackend, x, begin, size);
      begin[ax]! += n;
      return out;
    });
  });
  replace(originals.Unpack, (args) => {
    const x = args.inputs.value as tf.TensorInfo;
    if (!numeric(x)) return o.unpack(args);
    let axis = (args.attrs as { axis: number }).axis;
    if (axis < 0) axis += x.shape.length;
    const outShape = x.shape.filter((_, i) => i !== axis);
    const size = x.shape.slice();
    size[axis] = 1;
    return Array.from({ length: x.shape[axis]! }, (_, i) => {
      const begin = x.shape.map((_, d) => (d === axis ? i : 0));
      return { ...sliceOf(args.backend as WasmBackend, x, begin, size), shape: outShape };
    });
  });
  replace(originals.Sum, (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    // Only float32 over a run of leading axes (not all of them, which tfjs does without a transpose).
    const leading = axes.length > 0 && axes.length < x.shape.length && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading) return o.sum(args);
    const rows = x.shape.slice(0, axes.length).reduce((p, d) => p * d, 1);
    const inner = x.shape.slice(axes.length);
    const backend = args.backend as WasmBackend;
    const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...inner] : inner, 'float32');
    sumLeadingInto(backend.typedArrayFromHeap(x), rows, backend.typedArrayFromHeap(out));
    return out;
  });
  replace(originals.Identity, (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    return x.dtype === 'string' ? o.identity(args) : share(x, args.backend);
  });
  replace(originals.Cast, (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    return x.dtype !== 'string' && x.dtype === (args.attrs as { dtype: string }).dtype ? share(x, args.backend) : o.cast(args);
  });
}

/**
 * UnsortedSegmentSum, which tfjs 4.22's wasm backend lacks: out[s] = sum of
 * the rows x[i] with segmentIds[i] = s, rows in index order; ids outside
 * [0, numSegments) are dropped (as tf.unsortedSegmentSum on cpu). It is the
 * gradient of the embedding gather (src/ml/layers.ts), so without it nothing
 * with a text encoder trains on wasm. Registered once, whatever
 * useFastWasmKernels says: it replaces nothing.
 */
export function unsortedSegmentSumInto(x: ArrayLike<number>, ids: ArrayLike<number>, numSegments: number, out: { [i: number]: number; length: number }): void {
  const row = ids.length === 0 ? 0 : x.length / ids.length;
  for (let i = 0; i < out.length; i++) out[i] = 0;
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i]!;
    if (s < 0 || s >= numSegments) continue;
    for (let j = 0, o = s * row, k = i * row; j < row; j++, o++, k++) out[o] = out[o]! + x[k]!;
  }
}

export function registerMissingWasmKernels(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = (args.attrs as { numSegments: number }).numSegments;
      if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`UnsortedSegmentSum on wasm: dtype ${x.dtype} is not supported (float32 or int32)`);
      const backend = args.backend as WasmBackend;
      const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
      // Views are taken after makeOutput: an allocation may grow (and move) the heap.
      unsortedSegmentSumInto(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(segmentIds), numSegments, backend.typedArrayFromHeap(out));
      return out;
    },
  });
}

function registerLayerNormKernels(): void {
  if (tf.getKernel(LAYER_NORM_KERNEL, 'wasm')) return;
  const float32 = (t: tf.TensorInfo, what: string): void => {
    if (t.dtype !== 'float32') throw new Error(`${what} on wasm: dtype ${t.dtype} is not supported (float32)`);
  };
  tf.registerKernel({
    kernelName: LAYER_NORM_KERNEL,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const { x, gamma, beta } = args.inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
      float32(x, 'LayerNorm');
      const d = x.shape.at(-1)!;
      const backend = args.backend as WasmBackend;
      const y = backend.makeOutput(x.shape, 'float32');
      const mean = backend.makeOutput([x.shape.slice(0, -1).reduce((a, b) => a * b, 1)], 'float32');
      const rstd = backend.makeOutput(mean.shape, 'float32');
      // Views are taken after every makeOutput: an allocation may grow (and move) the heap.
      const view = (t: tf.TensorInfo) => backend.typedArrayFromHeap(t);
      layerNormForwardInto(view(x), view(gamma), view(beta), d, (args.attrs as { eps: number }).eps, view(y), view(mean), view(rstd));
      return [y, mean, rstd];
    },
  });
  tf.registerKernel({
    kernelName: LAYER_NORM_GRAD_KERNEL,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const { dy, x, gamma, mean, rstd } = args.inputs as Record<'dy' | 'x' | 'gamma' | 'mean' | 'rstd', tf.TensorInfo>;
      float32(dy, 'LayerNorm gradient');
      const d = x.shape.at(-1)!;
      const backend = args.backend as WasmBackend;
      const dx = backend.makeOutput(x.shape, 'float32');
      const dgamma = backend.makeOutput([d], 'float32');
      const dbeta = backend.makeOutput([d], 'float32');
      const view = (t: tf.TensorInfo) => backend.typedArrayFromHeap(t);
      layerNormBackwardInto(view(dy), view(x), view(gamma), view(mean), view(rstd), d, view(dx), view(dgamma), view(dbeta));
      return [dx, dgamma, dbeta];
    },
  });
}
