// The optimisation loop every training stage shares: AdamW (the method's
// betas and no-decay groups, docs/method.md), cosine schedule with warmup, clipping,
// per-step metrics and progress, periodic evaluation.

import * as tf from '@tensorflow/tfjs';
import type { StageContext } from '../stage-kind.js';
import type { ParamStore } from '../../ml/params.js';
import { AdamW, cosineWithWarmup, lossAndGrads, SMKE_ADAMW } from '../../ml/optim.js';
import { StepReporter } from './common.js';

export interface LoopOptions {
  ctx: StageContext;
  ps: ParamStore;
  steps: number;
  batchSize: number;
  lr: number;
  warmupFrac: number;
  clip: number;
  weightDecay?: number;
  /** Called before the loss of step `step`: fetches what the step reads (a streamed batch). */
  prepare?(step: number): Promise<void>;
  /** The loss of step `step` (0-based), built inside a tidy scope. */
  loss(step: number): tf.Scalar;
  /** Called after every optimiser update (e.g. to clamp parameters). */
  afterStep?(step: number): void;
  /** Called every `evalEvery` steps and after the last one. */
  evaluate?(step: number): Promise<void>;
  evalEvery?: number;
  /** Prefix of the per-step metric names (loss, lr), for a second loop in one stage. */
  metricPrefix?: string;
}

/** The schedule options every training kind takes from its parameters (TRAIN_COMMON's steps, lr, warmup, clip; eval_every if it has one). */
export function scheduleParams(p: {
  steps: number;
  lr: number;
  warmup: number;
  clip: number;
  eval_every?: number;
}): Pick<LoopOptions, 'steps' | 'lr' | 'warmupFrac' | 'clip' | 'evalEvery'> {
  return { steps: p.steps, lr: p.lr, warmupFrac: p.warmup, clip: p.clip, ...(p.eval_every !== undefined ? { evalEvery: p.eval_every } : {}) };
}

export async function trainLoop(o: LoopOptions): Promise<{ finalLoss: number; seconds: number }> {
  const opt = new AdamW(o.ps, { ...SMKE_ADAMW, weightDecay: o.weightDecay ?? SMKE_ADAMW.weightDecay });
  const reporter = new StepReporter(o.ctx, o.steps, o.batchSize);
  const warmup = Math.round(o.warmupFrac * o.steps);
  const t0 = performance.now();
  let finalLoss = NaN;
  let trainSeconds = 0;
  // The loss of step k is read once step k+1 is queued (nothing inside a step reads back to the
  // CPU, so the device does not wait for the host); at once before an evaluation and at the end.
  let queued: { step: number; lr: number; loss: tf.Scalar; seconds: number } | undefined;
  const readQueued = async () => {
    if (!queued) return;
    const { step, lr, loss, seconds } = queued;
    queued = undefined;
    finalLoss = (await loss.data())[0]!;
    loss.dispose();
    if (!Number.isFinite(finalLoss)) throw new Error(`loss is ${finalLoss} at step ${step + 1}: lower the learning rate`);
    const pre = o.metricPrefix ?? '';
    reporter.report(step + 1, { [`${pre}loss`]: finalLoss, [`${pre}lr`]: lr }, seconds);
  };
  try {
    for (let step = 0; step < o.steps; step++) {
      o.ctx.signal.throwIfAborted();
      const ts = performance.now();
      const lr = cosineWithWarmup(step, o.lr, warmup, o.steps);
      await o.prepare?.(step);
      const { loss, grads } = lossAndGrads(o.ps, () => ({ loss: o.loss(step) }));
      opt.apply(grads, lr, o.clip)?.dispose();
      for (const g of grads.values()) g.dispose();
      o.afterStep?.(step + 1);
      await readQueued();
      // From the step's start to here: its own work, and the wait for the step before it to finish.
      queued = { step, lr, loss, seconds: (performance.now() - ts) / 1000 };
      const evaluating = o.evaluate && ((o.evalEvery && (step + 1) % o.evalEvery === 0) || step + 1 === o.steps);
      if (evaluating) await readQueued();
      trainSeconds += (performance.now() - ts) / 1000;
      if (evaluating) {
        await o.evaluate!(step + 1);
      }
    }
    await readQueued();
    // A stop asked for while the last steps were read still stops the stage before it publishes.
    o.ctx.signal.throwIfAborted();
  } finally {
    queued?.loss.dispose();
    opt.dispose();
  }
  o.ctx.log.info(`trained ${o.steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s (${trainSeconds.toFixed(1)} s in steps)`);
  return { finalLoss, seconds: trainSeconds };
}

/** Runs `f` over [0, n) in chunks of `batch` inside tidy scopes and concatenates the float rows it returns. */
export async function inBatches(n: number, batch: number, f: (idx: number[]) => tf.Tensor): Promise<{ data: Float32Array; cols: number }> {
  const parts: Float32Array[] = [];
  let cols = 0;
  for (let i = 0; i < n; i += batch) {
    const idx = Array.from({ length: Math.min(batch, n - i) }, (_, k) => i + k);
    const t = tf.tidy(() => f(idx));
    cols = t.shape[t.rank - 1] ?? 1;
    parts.push((await t.data()) as Float32Array);
    t.dispose();
  }
  const data = concatFloats(parts);
  return { data, cols };
}

/** The arrays one after the other in one new array. */
export function concatFloats(parts: Float32Array[]): Float32Array {
  const data = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  return data;
}
