// AdamW with decoupled weight decay (PyTorch semantics) and global-norm
// clipping, both on the device; the cosine schedule with linear warmup;
// gradient accumulation.

import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** The method's pretraining AdamW settings (docs/method.md, "Optimisation"). */
export const SMKE_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.01 };

export type Grads = Map<string, tf.Tensor>;

/** Parameters updated together: their moments as two flat vectors, in `names` order. */
interface FlatGroup {
  key: string;
  names: string[];
  sizes: number[];
  m: tf.Variable;
  v: tf.Variable;
}

/** The tensors as one flat vector (in order): a view for one, a concat for several. */
function flatten(ts: tf.Tensor[]): tf.Tensor1D {
  return (ts.length === 1 ? ts[0]!.reshape([-1]) : tf.concat(ts.map((t) => t.reshape([-1])))) as tf.Tensor1D;
}

/**
 * AdamW as torch.optim.AdamW, updating all parameters in one pass per group:
 * the parameters of an update that share a step count and a weight decay are
 * one group, whose gradients, moments and values are flat vectors, so an
 * update runs about fifteen kernels per group (two in the usual case: with and
 * without decay) plus one slice per parameter, instead of fifteen per
 * parameter. Each element sees exactly the per-parameter arithmetic. Nothing
 * is read back to the CPU.
 */
export class AdamW {
  /** The groups of the last update, whose moments live as flat vectors. */
  private groups: FlatGroup[] = [];
  /** Moments of parameters in no current group (restored from a checkpoint, or not in the last update). */
  private readonly loose = new Map<string, { m: tf.Tensor; v: tf.Tensor }>();
  /**
   * Updates each parameter has received: bias correction counts per parameter,
   * as PyTorch's state['step'] does, so a parameter skipped on a step (no
   * gradient: frozen, then unfrozen, or unused by the batch) is corrected as
   * fresh when its first gradient arrives.
   */
  private readonly t = new Map<string, number>();
  /** Number of updates applied so far. */
  step = 0;

  constructor(
    private readonly ps: ParamStore,
    readonly cfg: AdamWConfig = SMKE_ADAMW,
  ) {}

  /** Makes the flat groups exactly `wanted` (lists of names), moving moments between groups through `loose`. */
  private regroup(wanted: string[][]): FlatGroup[] {
    const keys = wanted.map((names) => names.join('\n'));
    const keep = new Set(keys);
    for (const g of this.groups) {
      if (keep.has(g.key)) continue;
      // Dissolve: each member's moments become loose tensors again.
      const ms = tf.split(g.m, g.sizes);
      const vs = tf.split(g.v, g.sizes);
      g.names.forEach((n, i) => {
        const shape = this.ps.get(n).shape;
        this.loose.set(n, { m: ms[i]!.reshape(shape), v: vs[i]!.reshape(shape) });
      });
      tf.dispose([...ms, ...vs, g.m, g.v]);
    }
    const have = new Map(this.groups.filter((g) => keep.has(g.key)).map((g) => [g.key, g]));
    this.groups = wanted.map((names, i) => {
      const old = have.get(keys[i]!);
      if (old) return old;
      const sizes = names.map((n) => this.ps.get(n).size);
      const flatMoment = (which: 'm' | 'v') => {
        const init = tf.tidy(() => flatten(names.map((n) => this.loose.get(n)?.[which] ?? tf.zeros(this.ps.get(n).shape))));
        const variable = tf.variable(init, false);
        init.dispose(); // the variable holds its own reference to the data
        return variable;
      };
      const group = { key: keys[i]!, names, sizes, m: flatMoment('m'), v: flatMoment('v') };
      for (const n of names) {
        const l = this.loose.get(n);
        if (l) tf.dispose([l.m, l.v]);
        this.loose.delete(n);
      }
      return group;
    });
    return this.groups;
  }

  /**
   * p <- p - lr * (wd * p) - lr * m_hat / (sqrt(v_hat) + eps), with wd only for
   * parameters the store marks for decay (not 1-D, not embeddings). With
   * `clipNorm` > 0 the gradients are first scaled by min(1, clipNorm / (norm +
   * 1e-6)), norm being their global L2 norm (torch's clip_grad_norm_), on the
   * device; the norm before clipping is returned as a scalar the caller owns.
   * The caller's gradient tensors are left as they are.
   */
  apply(grads: Grads, lr: number, clipNorm = 0): tf.Scalar | undefined {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.cfg;
    const parts = new Map<string, { names: string[]; t: number; decay: number }>();
    for (const name of grads.keys()) {
      const t = (this.t.get(name) ?? 0) + 1;
      this.t.set(name, t);
      const decay = this.ps.info(name).decay ? weightDecay : 0;
      const key = `${t} ${decay}`;
      if (!parts.has(key)) parts.set(key, { names: [], t, decay });
      parts.get(key)!.names.push(name);
    }
    const wanted = [...parts.values()];
    const groups = this.regroup(wanted.map((w) => w.names));
    return tf.tidy(() => {
      let flatGrads: tf.Tensor[] = groups.map((g) => flatten(g.names.map((n) => grads.get(n)!)));
      let norm: tf.Scalar | undefined;
      if (clipNorm > 0) ({ tensors: flatGrads, norm } = clipByGlobalNorm(flatGrads, clipNorm));
      groups.forEach((group, i) => {
        const { t, decay } = wanted[i]!;
        const g = flatGrads[i]!;
        const bc1 = 1 - beta1 ** t;
        const bc2 = 1 - beta2 ** t;
        const m1 = tf.add(tf.mul(group.m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(group.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        group.m.assign(m1);
        group.v.assign(v1);
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps));
        const p = flatten(group.names.map((n) => this.ps.get(n)));
        const decayed = decay > 0 ? tf.mul(p, 1 - lr * decay) : p;
        const next = tf.sub(decayed, tf.mul(update, lr));
        const values = group.names.length === 1 ? [next] : tf.split(next, group.sizes);
        group.names.forEach((n, j) => {
          const param = this.ps.get(n);
          param.assign(values[j]!.reshape(param.shape));
        });
      });
      return norm;
    });
  }

  /** Moments and per-parameter step counts for checkpoints: `m.<name>`, `v.<name>`, `t.<name>` (exact in f32 up to 2^24 steps). */
  async snapshot(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    const put = (name: string, m: Float32Array, v: Float32Array) => {
      const shape = this.ps.get(name).shape.slice();
      out.set(`m.${name}`, { shape, data: m });
      out.set(`v.${name}`, { shape, data: v });
      out.set(`t.${name}`, { shape: [1], data: Float32Array.of(this.t.get(name) ?? 0) });
    };
    for (const g of this.groups) {
      const [m, v] = [(await g.m.data()) as Float32Array, (await g.v.data()) as Float32Array];
      let off = 0;
      g.names.forEach((n, i) => {
        put(n, m.slice(off, off + g.sizes[i]!), v.slice(off, off + g.sizes[i]!));
        off += g.sizes[i]!;
      });
    }
    for (const [n, l] of this.loose) put(n, (await l.m.data()) as Float32Array, (await l.v.data()) as Float32Array);
    return out;
  }

  /** `step` is the global update count; a snapshot without `t.` entries (older checkpoints) gives every parameter that count. */
  restore(values: Map<string, { shape: number[]; data: Float32Array }>, step: number): void {
    this.dispose();
    for (const [key, val] of values) {
      const kind = key.slice(0, 2);
      const name = key.slice(2);
      if (kind === 't.') this.t.set(name, val.data[0]!);
      if (kind !== 'm.' && kind !== 'v.') continue;
      const l = this.loose.get(name) ?? { m: tf.zeros(val.shape), v: tf.zeros(val.shape) };
      const prev = l[kind === 'm.' ? 'm' : 'v'];
      l[kind === 'm.' ? 'm' : 'v'] = tf.tensor(val.data, val.shape);
      prev.dispose();
      this.loose.set(name, l);
      if (!values.has(`t.${name}`)) this.t.set(name, step);
    }
    this.step = step;
  }

  dispose(): void {
    for (const g of this.groups) tf.dispose([g.m, g.v]);
    for (const l of this.loose.values()) tf.dispose([l.m, l.v]);
    this.groups = [];
    this.loose.clear();
    this.t.clear();
  }
}

/**
 * The lr of update number `step` (0-based: the first update is step 0), as
 * Hugging Face's get_cosine_schedule_with_warmup stepped once per update:
 * linear warmup from 0 (the first update has lr 0) to `base` at `warmup`, then
 * cosine decay to 0 at `total` (held at 0 past it).
 */
export function cosineWithWarmup(step: number, base: number, warmup: number, total: number): number {
  if (warmup > 0 && step < warmup) return (base * step) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return base * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/**
 * The tensors scaled by min(1, maxNorm / (norm + 1e-6)), norm being their
 * global L2 norm, as torch's clip_grad_norm_ (which always multiplies; a
 * factor of 1 leaves values exact). Computed on the device: no read-back.
 * Returns new tensors and the norm before clipping.
 */
export function clipByGlobalNorm(tensors: tf.Tensor[], maxNorm: number): { tensors: tf.Tensor[]; norm: tf.Scalar } {
  return tf.tidy(() => {
    const sums = tensors.map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(sums.length ? sums.reduce((a, b) => tf.add(a, b)) : tf.scalar(0)) as tf.Scalar;
    const factor = tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1);
    return { tensors: tensors.map((g) => tf.mul(g, factor)), norm };
  });
}

/** Sums gradients of several micro-batches; `mean()` hands back their average. */
export class GradAccumulator {
  private sum: Grads = new Map();
  private count = 0;

  add(grads: Grads): void {
    for (const [k, g] of grads) {
      const prev = this.sum.get(k);
      if (prev) {
        this.sum.set(k, tf.add(prev, g));
        prev.dispose();
        g.dispose();
      } else this.sum.set(k, g);
    }
    this.count++;
  }

  /** The averaged gradients; the accumulator is empty afterwards and the caller owns them. */
  mean(): Grads {
    const out: Grads = new Map();
    for (const [k, g] of this.sum) {
      out.set(k, this.count === 1 ? g : tf.div(g, this.count));
      if (this.count !== 1) g.dispose();
    }
    this.sum = new Map();
    this.count = 0;
    return out;
  }
}

/**
 * Loss and gradients of the trainable parameters (by store name). `f` runs
 * inside a tidy scope; extra scalars it returns in `aux` are kept for the caller.
 */
export function lossAndGrads(
  ps: ParamStore,
  f: () => { loss: tf.Scalar; aux?: Record<string, tf.Scalar> },
): { loss: tf.Scalar; aux: Record<string, tf.Scalar>; grads: Grads } {
  const names = ps.trainableNames();
  const vars = names.map((n) => ps.get(n));
  let aux: Record<string, tf.Scalar> = {};
  const { value, grads } = tf.variableGrads(() => {
    const r = f();
    aux = r.aux ?? {};
    for (const t of Object.values(aux)) tf.keep(t);
    return r.loss;
  }, vars);
  const out: Grads = new Map();
  names.forEach((n, i) => {
    const g = grads[vars[i]!.name];
    if (g) out.set(n, g);
  });
  return { loss: value, aux, grads: out };
}
