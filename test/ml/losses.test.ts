import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { clipLoss, diagonalAccuracy, diagonalCrossEntropy, infoNceLoss, kdLoss, MemoryBank, LOGIT_SCALE_MAX } from '../../src/ml/losses.js';
import { cosineWithWarmup, AdamW, clipByGlobalNorm, GradAccumulator } from '../../src/ml/optim.js';
import { ParamStore } from '../../src/ml/params.js';
import { defineSmke, clampLogitScales } from '../../src/ml/smke.js';
import { TINY } from './tiny.js';
import { Rng } from '../../src/data/rng.js';

const val = (t: tf.Tensor) => t.dataSync()[0]!;

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('losses on hand-computed cases', () => {
  it('diagonal cross-entropy', () => {
    // row 0: logits [2,0] label 0 -> log(1+e^-2); row 1: [1,1] label 1 -> log 2
    const l = diagonalCrossEntropy(
      tf.tensor2d([
        [2, 0],
        [1, 1],
      ]),
    );
    expect(val(l)).toBeCloseTo((Math.log(1 + Math.exp(-2)) + Math.log(2)) / 2, 6);
  });
  it('CLIP loss with learned scale', () => {
    const eye = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    expect(val(clipLoss(eye, eye, tf.scalar(Math.log(2))))).toBeCloseTo(Math.log(1 + Math.exp(-2)), 6);
    // asymmetric case: a=[[1,0],[0,1]], b=[[0.6,0.8],[0,1]] scale 1
    // i2t rows: [0.6,0]->l0 ; [0.8,1]->l1 ; t2i rows (columns): [0.6,0.8]->l0 ; [0,1]->l1
    const lse = (a: number, b: number) => Math.log(Math.exp(a) + Math.exp(b));
    const i2t = (lse(0.6, 0) - 0.6 + (lse(0.8, 1) - 1)) / 2;
    const t2i = (lse(0.6, 0.8) - 0.6 + (lse(0, 1) - 1)) / 2;
    expect(
      val(
        clipLoss(
          eye,
          tf.tensor2d([
            [0.6, 0.8],
            [0, 1],
          ]),
          tf.scalar(0),
        ),
      ),
    ).toBeCloseTo((i2t + t2i) / 2, 6);
  });
  it('contrastive KD against teacher targets and the bank', () => {
    const sImg = tf.tensor2d([[1, 0]]),
      sTxt = tf.tensor2d([[0, 1]]),
      t = tf.tensor2d([[1, 0]]),
      bank = tf.tensor2d([[0, 1]]);
    const expected = (Math.log(1 + Math.exp(-1)) + Math.log(1 + Math.exp(1))) / 2;
    expect(val(kdLoss(sImg, sTxt, t, bank, 1))).toBeCloseTo(expected, 6);
    // in-batch (validation): one target only -> CE of a single logit is 0
    expect(val(kdLoss(sImg, sTxt, t, null, 1))).toBeCloseTo(0, 6);
    // default c = 1/0.07
    const c = 1 / 0.07;
    expect(val(kdLoss(sImg, sTxt, t, bank))).toBeCloseTo((Math.log(1 + Math.exp(-c)) + Math.log(1 + Math.exp(c))) / 2, 4);
  });
});

describe('in-batch (KD / ITC) accuracy', () => {
  const acc = (rows: number[][]) => val(diagonalAccuracy(tf.tensor2d(rows)));
  it('counts a row when its diagonal entry is strictly the largest', () => {
    expect(
      acc([
        [3, 1, 2],
        [0, 5, 1],
        [1, 2, 0],
      ]),
    ).toBeCloseTo(2 / 3, 6);
    // rectangular (in-batch targets followed by a bank): the label is still the diagonal
    expect(
      acc([
        [4, 1, 2, 3],
        [0, 5, 1, -1],
      ]),
    ).toBe(1);
  });
  it('ties and NaN count against the model (a constant model scores 0, not 1/B)', () => {
    expect(
      acc([
        [1, 1, 1],
        [1, 1, 1],
        [1, 1, 1],
      ]),
    ).toBe(0);
    expect(
      acc([
        [2, 2, 0],
        [0, 3, 1],
        [0, 1, 2],
      ]),
    ).toBeCloseTo(2 / 3, 6); // row 0 tied
    expect(
      acc([
        [2, NaN, 0],
        [0, NaN, 1],
        [0, 1, 2],
      ]),
    ).toBeCloseTo(1 / 3, 6); // NaN wrong entry beats, NaN true entry misses
    expect(
      acc([
        [Infinity, 1],
        [-Infinity, -Infinity],
      ]),
    ).toBe(0.5);
  });
});

describe('memory bank', () => {
  it('starts as normalised noise and is FIFO', async () => {
    const bank = new MemoryBank(3, 2, 7);
    const init = await bank.data();
    for (let r = 0; r < 3; r++) expect(Math.hypot(init[2 * r]!, init[2 * r + 1]!)).toBeCloseTo(1, 5);
    bank.push(
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]),
    );
    expect(Array.from(await bank.data())).toEqual([1, 0, 0, 1, init[0], init[1]]);
    bank.push(
      tf.tensor2d([
        [5, 5],
        [6, 6],
        [7, 7],
        [8, 8],
      ]),
    );
    expect(Array.from(await bank.data())).toEqual([5, 5, 6, 6, 7, 7]);
    bank.dispose();
  });
});

describe('optimisation', () => {
  it('cosine schedule with linear warmup', () => {
    // 0-based update index, as Hugging Face's schedule: the first update has lr 0
    expect(cosineWithWarmup(0, 1, 10, 110)).toBe(0);
    expect(cosineWithWarmup(9, 1, 10, 110)).toBeCloseTo(0.9);
    expect(cosineWithWarmup(10, 1, 10, 110)).toBeCloseTo(1);
    expect(cosineWithWarmup(60, 1, 10, 110)).toBeCloseTo(0.5);
    expect(cosineWithWarmup(110, 1, 10, 110)).toBeCloseTo(0);
  });

  it('AdamW: one step by hand, decay only for matrices', () => {
    const ps = new ParamStore(1);
    ps.add('w', [1, 2], { kind: 'const', value: 1 });
    ps.add('b', [2], { kind: 'const', value: 1 });
    ps.add('e', [2, 1], { kind: 'const', value: 1 }, { embedding: true });
    const opt = new AdamW(ps, { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.5 });
    const g = new Map<string, tf.Tensor>([
      ['w', tf.tensor2d([[2, -4]])],
      ['b', tf.tensor1d([2, -4])],
      ['e', tf.tensor2d([[2], [-4]])],
    ]);
    opt.apply(g, 0.1);
    // first step: m_hat = g, v_hat = g^2 -> update = sign(g) (up to eps)
    const w = ps.get('w').dataSync(),
      b = ps.get('b').dataSync(),
      e = ps.get('e').dataSync();
    expect(w[0]).toBeCloseTo(1 * (1 - 0.1 * 0.5) - 0.1, 5);
    expect(w[1]).toBeCloseTo(1 * (1 - 0.1 * 0.5) + 0.1, 5);
    expect(b[0]).toBeCloseTo(0.9, 5);
    expect(e[1]).toBeCloseTo(1.1, 5);
    // second step with the same gradient: m = g(0.9*0.1+0.1)=..., bias-corrected still g
    opt.apply(g, 0.1);
    expect(ps.get('b').dataSync()[0]).toBeCloseTo(0.8, 5);
    opt.dispose();
    ps.dispose();
  });

  it('global-norm clipping and accumulation', async () => {
    const g = new Map([
      ['a', tf.tensor1d([3, 0])],
      ['b', tf.tensor1d([0, 4])],
    ]);
    const clipped = clipByGlobalNorm([...g.values()], 1);
    expect(clipped.norm.dataSync()[0]).toBeCloseTo(5, 5);
    expect(Array.from(clipped.tensors[0]!.dataSync())[0]).toBeCloseTo(0.6, 4);
    expect(Array.from(clipped.tensors[1]!.dataSync())[1]).toBeCloseTo(0.8, 4);
    // Under the limit the values stay exact (factor 1).
    const kept = clipByGlobalNorm([tf.tensor1d([0.1, -0.3]), tf.tensor1d([1e-7])], 10);
    expect(Array.from(kept.tensors[0]!.dataSync())).toEqual(Array.from(Float32Array.of(0.1, -0.3)));
    expect(kept.tensors[1]!.dataSync()[0]).toBe(Math.fround(1e-7));
    // No tensors: norm 0.
    expect(clipByGlobalNorm([], 1).norm.dataSync()[0]).toBe(0);
    const acc = new GradAccumulator();
    acc.add(new Map([['a', tf.tensor1d([1, 2])]]));
    acc.add(new Map([['a', tf.tensor1d([3, 6])]]));
    expect(Array.from(acc.mean().get('a')!.dataSync())).toEqual([2, 4]);
  });

  it('logit scales are clamped to [0, ln 100]', () => {
    const ps = new ParamStore(1);
    defineSmke(ps, TINY);
    ps.get('scale.interm').assign(tf.scalar(9));
    ps.get('scale.out').assign(tf.scalar(-1));
    clampLogitScales(ps);
    expect(val(ps.get('scale.interm'))).toBeCloseTo(LOGIT_SCALE_MAX, 5);
    expect(val(ps.get('scale.out'))).toBe(0);
    ps.dispose();
  });
});

describe('two-view InfoNCE (train.mlm sentence objective)', () => {
  const lse = (xs: number[]) => Math.log(xs.reduce((s, x) => s + Math.exp(x), 0));
  const norm = (v: number[]) => v.map((x) => x / Math.hypot(...v));
  const cos = (a: number[], b: number[]) => norm(a).reduce((s, x, i) => s + x * norm(b)[i]!, 0);
  // The definition, as plain loops: logits_ij = cos(a_i, b_j) / tau; mean over rows of -log softmax at the diagonal,
  // for a->b (rows) and b->a (columns), averaged.
  const byDefinition = (a: number[][], b: number[][], tau: number) => {
    const l = a.map((ai) => b.map((bj) => cos(ai, bj) / tau));
    const rows = l.map((r, i) => lse(r) - r[i]!);
    const cols = l.map((_, j) => lse(l.map((r) => r[j]!)) - l[j]![j]!);
    return (rows.reduce((s, x) => s + x, 0) + cols.reduce((s, x) => s + x, 0)) / (2 * l.length);
  };
  it('matches hand-computed cases', () => {
    // Identical orthogonal views at tau 1: each row is [1, 0] with label its own -> log(1 + e^-1).
    const eye = [
      [1, 0],
      [0, 1],
    ];
    expect(val(infoNceLoss(tf.tensor2d(eye), tf.tensor2d(eye), 1))).toBeCloseTo(Math.log(1 + Math.exp(-1)), 6);
    // Scale does not matter (cosine): a = 3 * eye, b = 0.5 * eye at tau 0.5 -> log(1 + e^-2).
    expect(
      val(
        infoNceLoss(
          tf.tensor2d([
            [3, 0],
            [0, 3],
          ]),
          tf.tensor2d([
            [0.5, 0],
            [0, 0.5],
          ]),
          0.5,
        ),
      ),
    ).toBeCloseTo(Math.log(1 + Math.exp(-2)), 6);
    // Asymmetric: a = [[1,0],[0,1]], b = [[0.6,0.8],[0,1]], tau 1 (as the CLIP case): rows [0.6,0] and [0.8,1],
    // columns [0.6,0.8] and [0,1].
    const ab = (lse([0.6, 0]) - 0.6 + (lse([0.8, 1]) - 1) + (lse([0.6, 0.8]) - 0.6) + (lse([0, 1]) - 1)) / 4;
    expect(
      val(
        infoNceLoss(
          tf.tensor2d(eye),
          tf.tensor2d([
            [0.6, 0.8],
            [0, 1],
          ]),
          1,
        ),
      ),
    ).toBeCloseTo(ab, 6);
    // Swapped views: the loss is symmetric.
    expect(
      val(
        infoNceLoss(
          tf.tensor2d([
            [0.6, 0.8],
            [0, 1],
          ]),
          tf.tensor2d(eye),
          1,
        ),
      ),
    ).toBeCloseTo(ab, 6);
  });
  it('hard negatives add columns to the a->b direction only, invalid ones left out', () => {
    const eye = [
      [1, 0],
      [0, 1],
    ];
    // Every row also scores each valid negative (SimCSE's supervised form: all of the batch's hard negatives are
    // columns): neg_0 = [0, 1] gives row 0 cos 0 and row 1 cos 1; neg_1 is invalid. b->a: columns of eye.
    const ab = (lse([1, 0, 0]) - 1 + (lse([0, 1, 1]) - 1)) / 2;
    const ba = Math.log(1 + Math.exp(-1));
    const l = infoNceLoss(tf.tensor2d(eye), tf.tensor2d(eye), 1, {
      neg: tf.tensor2d([
        [0, 1],
        [1, 0],
      ]),
      valid: [true, false],
    });
    expect(val(l)).toBeCloseTo((ab + ba) / 2, 6);
    // Hard negatives equal to the positives: each a->b row is lse([1, 0, 1, 0]) - 1.
    const l2 = infoNceLoss(tf.tensor2d(eye), tf.tensor2d(eye), 1, { neg: tf.tensor2d(eye), valid: [true, true] });
    expect(val(l2)).toBeCloseTo((lse([1, 0, 1, 0]) - 1 + ba) / 2, 6);
  });
  it('equals the definition on random batches', () => {
    const rng = new Rng(7);
    for (const [b, d, tau] of [
      [3, 4, 0.05],
      [5, 8, 0.2],
      [8, 3, 1],
    ] as const) {
      const draw = () => Array.from({ length: b }, () => Array.from({ length: d }, () => rng.next() * 2 - 1));
      const a = draw(),
        c = draw();
      expect(val(infoNceLoss(tf.tensor2d(a), tf.tensor2d(c), tau))).toBeCloseTo(byDefinition(a, c, tau), 4);
    }
  });
  it('a few gradient steps on free vectors lower it', () => {
    const rng = new Rng(11);
    const init = (n: number) => Array.from({ length: n * 6 }, () => rng.next() - 0.5);
    const a = tf.variable(tf.tensor2d(init(6), [6, 6])),
      b = tf.variable(tf.tensor2d(init(6), [6, 6]));
    const opt = tf.train.sgd(0.5);
    const f = () => infoNceLoss(a, b, 0.1);
    const first = val(f());
    for (let i = 0; i < 10; i++) opt.minimize(f);
    expect(val(f())).toBeLessThan(first * 0.5);
  });
});
