// One S-SMKE optimisation step: losses over micro-batches, gradient
// accumulation, global-norm clipping, AdamW, logit-scale clamping and the
// memory-bank update. Kept apart from data loading so tests can drive it.

import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';
import { AdamW, clipGlobalNorm, GradAccumulator, lossAndGrads } from './optim.js';
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
  gradNorm: number;
}

/**
 * With `comm` of N > 1 ranks, `micro` is this rank's contiguous share of the step's micro-batches
 * (rankShare): gradients and losses are averaged over the ranks and every rank enqueues the
 * all-gathered teacher targets in micro-batch order, so N ranks end the step exactly as one rank
 * given all the micro-batches would (up to the summation order of the gradient mean).
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
): Promise<StepResult> {
  const acc = new GradAccumulator();
  let loss = 0,
    kd = 0,
    itc = 0;
  for (const b of micro) {
    // Every micro-batch sees the same bank; targets enter it after the update, as in MoCo.
    const r = lossAndGrads(ps, () => {
      // A bank of size 0 is in-batch KD (the ablation without the memory bank).
      const l = smkeLoss(ps, cfg, b.images, b.text, b.teacher, bank.size > 0 ? bank.tensor : null);
      return { loss: l.total, aux: { kd: l.kd, itc: l.itc } };
    });
    loss += (await r.loss.data())[0]! / micro.length;
    kd += (await r.aux.kd!.data())[0]! / micro.length;
    itc += (await r.aux.itc!.data())[0]! / micro.length;
    r.loss.dispose();
    for (const t of Object.values(r.aux)) t.dispose();
    acc.add(r.grads);
  }
  let grads = acc.mean();
  if (comm && comm.world > 1) {
    grads = await allReduceGrads(comm, grads);
    const m = await comm.allReduceMean(Float32Array.of(loss, kd, itc));
    [loss, kd, itc] = [m[0]!, m[1]!, m[2]!];
  }
  const gradNorm = clipNorm > 0 ? await clipGlobalNorm(grads, clipNorm) : NaN;
  opt.apply(grads, lr);
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
  return { loss, kd, itc, gradNorm };
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
