// One S-SMKE optimisation step: losses over micro-batches, gradient
// accumulation, global-norm clipping, AdamW, logit-scale clamping and the
// memory-bank update. Kept apart from data loading so tests can drive it.

import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';
import { AdamW, GradAccumulator, lossAndGrads } from './optim.js';
import { clampLogitScales, smkeAccuracies, smkeLoss, type SmkeConfig } from './smke.js';
import type { MemoryBank } from './losses.js';
import type { TextBatch } from './text.js';
import type { Communicator } from './data-parallel.js';
import { allGatherRows, allReduceGrads } from './dp-step.js';

export interface SmkeBatch {
  images: tf.Tensor4D;
  text: TextBatch;
  /** Normalised teacher CLS of the same (augmented) images [B, Dt]. */
  teacher: tf.Tensor2D;
}

export interface StepResult {
  loss: number;
  kd: number;
  itc: number;
  /** Global gradient norm before clipping (NaN without clipping). */
  gradNorm: number;
  /** The two logit scales after the update (and their clamp). */
  scaleInterm: number;
  scaleOut: number;
}

/**
 * A step whose metrics are still on the device: reading them is the only sync
 * with the GPU, so a training loop reads step k's after it has queued step k+1.
 */
export interface PendingStep {
  /** The metrics (once; the device tensor is freed). */
  read(): Promise<StepResult>;
  /** Frees the metrics without reading them. */
  dispose(): void;
}

function pending(values: tf.Tensor1D): PendingStep {
  return {
    async read() {
      const v = await values.data();
      values.dispose();
      return { loss: v[0]!, kd: v[1]!, itc: v[2]!, gradNorm: v[3]!, scaleInterm: v[4]!, scaleOut: v[5]! };
    },
    dispose: () => values.dispose(),
  };
}

/**
 * With `comm` of N > 1 ranks, `micro` is this rank's contiguous share of the step's micro-batches
 * (rankShare): gradients and losses are averaged over the ranks and every rank enqueues the
 * all-gathered teacher targets in micro-batch order, so N ranks end the step exactly as one rank
 * given all the micro-batches would (up to the summation order of the gradient mean).
 * On one rank nothing is read back to the CPU: losses, clipping and AdamW stay on the device
 * (with N ranks the exchange goes through the CPU by construction).
 */
export async function smkeTrainStep(
  ps: ParamStore,
  cfg: SmkeConfig,
  opt: AdamW,
  bank: MemoryBank,
  micro: SmkeBatch[],
  lr: number,
  clipNorm: number,
  comm?: Communicator,
): Promise<PendingStep> {
  const acc = new GradAccumulator();
  let losses: tf.Tensor1D = tf.zeros([3]);
  for (const b of micro) {
    // Every micro-batch sees the same bank; targets enter it after the update, as in MoCo.
    const r = lossAndGrads(ps, () => {
      // A bank of size 0 is in-batch KD (the ablation without the memory bank).
      const l = smkeLoss(ps, cfg, b.images, b.text, b.teacher, bank.size > 0 ? bank.tensor : null);
      return { loss: l.total, aux: { kd: l.kd, itc: l.itc } };
    });
    const prev = losses;
    losses = tf.tidy(() => tf.add(prev, tf.div(tf.stack([r.loss, r.aux.kd!, r.aux.itc!]), micro.length)));
    tf.dispose([prev, r.loss, ...Object.values(r.aux)]);
    acc.add(r.grads);
  }
  let grads = acc.mean();
  if (comm && comm.world > 1) {
    grads = await allReduceGrads(comm, grads);
    const m = await comm.allReduceMean((await losses.data()) as Float32Array);
    losses.dispose();
    losses = tf.tensor1d(m);
  }
  const norm = opt.apply(grads, lr, clipNorm) ?? tf.scalar(NaN);
  for (const g of grads.values()) g.dispose();
  clampLogitScales(ps);
  if (bank.size > 0) {
    if (comm && comm.world > 1) {
      const all = await allGatherRows(
        comm,
        micro.map((b) => b.teacher),
      );
      for (const t of all) bank.push(t);
      tf.dispose(all);
    } else for (const b of micro) bank.push(b.teacher);
  }
  const values = tf.tidy(() => tf.concat([losses, tf.stack([norm, ps.get('scale.interm'), ps.get('scale.out')])]) as tf.Tensor1D);
  tf.dispose([losses, norm]);
  return pending(values);
}

export interface ValidationResult {
  loss: number;
  kd: number;
  itc: number;
  kdAcc: number;
  itcAcc: number;
}

/** Validation: in-batch KD (no bank), averaged over the given batches. */
export async function smkeValidate(ps: ParamStore, cfg: SmkeConfig, batches: SmkeBatch[]): Promise<ValidationResult> {
  const sum = { loss: 0, kd: 0, itc: 0, kdAcc: 0, itcAcc: 0 };
  for (const b of batches) {
    const vals = tf.tidy(() => {
      const l = smkeLoss(ps, cfg, b.images, b.text, b.teacher, null);
      const a = smkeAccuracies(l.img, l.txt, b.teacher);
      return tf.stack([l.total, l.kd, l.itc, a.kdAcc, a.itcAcc]);
    });
    const d = await vals.data();
    vals.dispose();
    sum.loss += d[0]!;
    sum.kd += d[1]!;
    sum.itc += d[2]!;
    sum.kdAcc += d[3]!;
    sum.itcAcc += d[4]!;
  }
  const n = Math.max(1, batches.length);
  return { loss: sum.loss / n, kd: sum.kd / n, itc: sum.itc / n, kdAcc: sum.kdAcc / n, itcAcc: sum.itcAcc / n };
}
