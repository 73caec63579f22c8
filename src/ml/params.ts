// Parameters as explicit named variables. Names are stable ("image.blocks.0.attn.qkv.w")
// because they are the safetensors keys of checkpoints and decide AdamW's
// weight-decay groups; initialisation draws from a seeded JS generator so a
// model is the same on every backend for the same seed.

import * as tf from '@tensorflow/tfjs';
import { Rng } from '../data/rng.js';

export type Init = { kind: 'normal'; std: number } | { kind: 'const'; value: number } | { kind: 'uniform'; lo: number; hi: number };

export interface ParamInfo {
  variable: tf.Variable;
  /** AdamW applies weight decay only where this is true (matrices that are not embeddings). */
  decay: boolean;
}

export class ParamStore {
  private readonly byName = new Map<string, ParamInfo>();
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /**
   * Creates a parameter. `embedding` marks lookup tables, which like 1-D
   * parameters get no weight decay (s-smke.md, optimisation).
   */
  add(name: string, shape: number[], init: Init, opts: { embedding?: boolean; trainable?: boolean } = {}): tf.Variable {
    if (this.byName.has(name)) throw new Error(`parameter '${name}' defined twice`);
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (init.kind === 'const') data.fill(init.value);
    else if (init.kind === 'uniform') for (let i = 0; i < size; i++) data[i] = init.lo + (init.hi - init.lo) * this.rng.next();
    else for (let i = 0; i < size; i++) data[i] = truncatedNormal(this.rng) * init.std;
    // Unnamed tfjs variables: tfjs names are global, and tests build many models.
    const variable = tf.variable(tf.tensor(data, shape, 'float32'), opts.trainable ?? true);
    this.byName.set(name, { variable, decay: shape.length >= 2 && !opts.embedding });
    return variable;
  }

  get(name: string): tf.Variable {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no parameter '${name}'`);
    return p.variable;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): ParamInfo {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no parameter '${name}'`);
    return p;
  }

  names(prefix = ''): string[] {
    return [...this.byName.keys()].filter((n) => n.startsWith(prefix));
  }

  trainableNames(): string[] {
    return [...this.byName.entries()].filter(([, p]) => p.variable.trainable).map(([n]) => n);
  }

  /** Freezes (or unfreezes) every parameter under a prefix. */
  setTrainable(prefix: string, trainable: boolean): void {
    for (const [n, p] of this.byName) if (n.startsWith(prefix)) p.variable.trainable = trainable;
  }

  count(prefix = ''): number {
    return this.names(prefix).reduce((s, n) => s + this.get(n).size, 0);
  }

  /** Copies values in from tensors keyed by name; returns the names that were loaded. */
  load(values: Map<string, { shape: number[]; data: Float32Array }>, opts: { from?: string; to?: string; strict?: boolean } = {}): string[] {
    const from = opts.from ?? '',
      to = opts.to ?? '';
    const loaded: string[] = [];
    for (const [name, v] of values) {
      if (!name.startsWith(from)) continue;
      const target = to + name.slice(from.length);
      if (!this.byName.has(target)) {
        if (opts.strict) throw new Error(`checkpoint tensor '${name}' has no parameter '${target}'`);
        continue;
      }
      const variable = this.get(target);
      if (variable.shape.join('x') !== v.shape.join('x'))
        throw new Error(`shape of '${target}' is ${variable.shape.join('x')}, checkpoint has ${v.shape.join('x')}`);
      variable.assign(tf.tensor(v.data, v.shape, 'float32'));
      loaded.push(target);
    }
    return loaded;
  }

  /** Values for checkpoints, keyed by name, in insertion order. */
  async snapshot(prefix = ''): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const n of this.names(prefix)) {
      const v = this.get(n);
      out.set(n, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
    }
    return out;
  }

  dispose(): void {
    for (const p of this.byName.values()) p.variable.dispose();
    this.byName.clear();
  }
}

/** Standard normal truncated to two standard deviations, as ViT/BERT initialise. */
function truncatedNormal(rng: Rng): number {
  for (;;) {
    const z = rng.normal();
    if (Math.abs(z) <= 2) return z;
  }
}
