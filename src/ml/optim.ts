// AdamW with decoupled weight decay (PyTorch semantics), the cosine schedule
// with linear warmup, global-norm clipping and gradient accumulation.

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

export class AdamW {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
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

  private moments(name: string): [tf.Variable, tf.Variable] {
    let m = this.m.get(name);
    let v = this.v.get(name);
    if (!m || !v) {
      const shape = this.ps.get(name).shape;
      m = tf.variable(tf.zeros(shape), false);
      v = tf.variable(tf.zeros(shape), false);
      this.m.set(name, m);
      this.v.set(name, v);
    }
    return [m, v];
  }

  /**
   * p <- p - lr * (wd * p) - lr * m_hat / (sqrt(v_hat) + eps), with wd only for
   * parameters the store marks for decay (not 1-D, not embeddings).
   */
  apply(grads: Grads, lr: number): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.cfg;
    for (const [name, g] of grads) {
      const t = (this.t.get(name) ?? 0) + 1;
      this.t.set(name, t);
      const bc1 = 1 - beta1 ** t;
      const bc2 = 1 - beta2 ** t;
      const p = this.ps.get(name);
      const decay = this.ps.info(name).decay ? weightDecay : 0;
      const [m, v] = this.moments(name);
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps));
        const decayed = decay > 0 ? tf.mul(p, 1 - lr * decay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  /** Moments and per-parameter step counts for checkpoints: `m.<name>`, `v.<name>`, `t.<name>` (exact in f32 up to 2^24 steps). */
  async snapshot(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, m] of this.m) {
      out.set(`m.${name}`, { shape: m.shape.slice(), data: (await m.data()) as Float32Array });
      out.set(`v.${name}`, { shape: m.shape.slice(), data: (await this.v.get(name)!.data()) as Float32Array });
      out.set(`t.${name}`, { shape: [1], data: Float32Array.of(this.t.get(name) ?? 0) });
    }
    return out;
  }

  /** `step` is the global update count; a snapshot without `t.` entries (older checkpoints) gives every parameter that count. */
  restore(values: Map<string, { shape: number[]; data: Float32Array }>, step: number): void {
    for (const [key, val] of values) {
      const kind = key.slice(0, 2);
      const name = key.slice(2);
      if (kind === 't.') this.t.set(name, val.data[0]!);
      if (kind !== 'm.' && kind !== 'v.') continue;
      const [m, v] = this.moments(name);
      (kind === 'm.' ? m : v).assign(tf.tensor(val.data, val.shape));
      if (!values.has(`t.${name}`)) this.t.set(name, step);
    }
    this.step = step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
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
 * Global L2 norm of all gradients. The per-tensor sums are added pairwise, not
 * with one addN: webgpu compiles addN into a single shader with one storage
 * buffer per input, and a model has far more parameters than the 8 buffers a
 * compute stage may bind (seen on an H200: the kernel failed validation).
 */
export function globalNorm(grads: Grads): tf.Scalar {
  return tf.tidy(() => {
    let terms: tf.Tensor[] = [...grads.values()].map((g) => tf.sum(tf.square(g)));
    if (terms.length === 0) return tf.scalar(0);
    while (terms.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < terms.length; i += 2) next.push(i + 1 < terms.length ? tf.add(terms[i]!, terms[i + 1]!) : terms[i]!);
      terms = next;
    }
    return tf.sqrt(terms[0]!) as tf.Scalar;
  });
}

/** Rescales gradients so their global norm is at most `maxNorm` (torch's clip_grad_norm_); returns the norm before. */
export async function clipGlobalNorm(grads: Grads, maxNorm: number): Promise<number> {
  const normT = globalNorm(grads);
  const norm = (await normT.data())[0]!;
  normT.dispose();
  const factor = maxNorm / (norm + 1e-6);
  if (factor < 1) {
    for (const [k, g] of grads) {
      grads.set(k, tf.mul(g, factor));
      g.dispose();
    }
  }
  return norm;
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
