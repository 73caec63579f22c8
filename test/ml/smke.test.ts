import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { ParamStore } from '../../src/ml/params.js';
import { defineSmke, smkeImage, smkeLoss, smkeText } from '../../src/ml/smke.js';
import { lossAndGrads, AdamW } from '../../src/ml/optim.js';
import { MemoryBank } from '../../src/ml/losses.js';
import { smkeTrainStep } from '../../src/ml/smke-train.js';
import { Rng } from '../../src/data/rng.js';
import { TINY, tinyBatch, disposeBatch } from './tiny.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('S-SMKE model', () => {
  it('produces normalised x, x_interm and KD embeddings of the configured widths', () => {
    const ps = new ParamStore(3);
    defineSmke(ps, TINY);
    const b = tinyBatch(1);
    tf.tidy(() => {
      const img = smkeImage(ps, TINY, b.images);
      const txt = smkeText(ps, TINY, b.text);
      expect(img.x.shape).toEqual([3, 8]);
      expect(img.interm.shape).toEqual([3, 16]);
      expect(txt.kd.shape).toEqual([3, 6]);
      for (const t of [img.x, img.interm, img.kd, txt.x]) {
        for (const n of tf.norm(t, 'euclidean', 1).dataSync()) expect(n).toBeCloseTo(1, 5);
      }
    });
    disposeBatch(b);
    ps.dispose();
  });

  it('masks text padding: changing a padded token id changes nothing', () => {
    const ps = new ParamStore(3);
    defineSmke(ps, TINY);
    const ids = [[2, 3, 4, 0, 0, 0]],
      mask = [[1, 1, 1, 0, 0, 0]];
    const ids2 = [[2, 3, 4, 7, 9, 5]];
    const run = (i: number[][]) =>
      tf.tidy(() => Array.from(smkeText(ps, TINY, { ids: tf.tensor2d(i, [1, 6], 'int32'), mask: tf.tensor2d(mask, [1, 6], 'int32') }).x.dataSync()));
    const a = run(ids),
      c = run(ids2);
    a.forEach((v, k) => expect(c[k]).toBeCloseTo(v, 6));
    ps.dispose();
  });

  it('matches finite differences of the full loss (L_KD with bank + L_ITC)', () => {
    const ps = new ParamStore(5);
    defineSmke(ps, TINY);
    // Make the token-type path and logit scales matter so their gradients are checked too.
    ps.get('token_type.scale').assign(tf.fill([8], 0.5));
    const batch = tinyBatch(9);
    const bank = new MemoryBank(4, TINY.teacherDim, 11);
    const lossFn = () => smkeLoss(ps, TINY, batch.images, batch.text, batch.teacher, bank.tensor).total;
    const { loss, grads } = lossAndGrads(ps, () => ({ loss: lossFn() }));
    loss.dispose();
    const rng = new Rng(13);
    const names = ps.trainableNames();
    const checked = [
      'image.patch.w',
      'image.blocks.0.attn.qkv.w',
      'text.word',
      'text.blocks.0.mlp.fc1.w',
      'token_type.table',
      'token_type.scale',
      'shared.ls1',
      'shared.mlp.fc1.w',
      'kd.head.w',
      'scale.interm',
      'scale.out',
    ];
    for (const n of checked) expect(names).toContain(n);
    // Small step: the KD logits are scaled by c = 14.3, so the loss curves sharply.
    const h = 1e-3;
    // Directional derivatives: per checked parameter, and one along all parameters at once.
    const dirs: Map<string, Float32Array>[] = checked.map((n) => new Map([[n, randomUnit(rng, ps.get(n).size)]]));
    dirs.push(new Map(names.map((n) => [n, randomUnit(rng, ps.get(n).size, Math.sqrt(names.length))])));
    for (const dir of dirs) {
      let analytic = 0;
      for (const [n, d] of dir) {
        const g = grads.get(n);
        if (g) analytic += tf.tidy(() => tf.sum(tf.mul(g.reshape([-1]), tf.tensor1d(d))).dataSync()[0]!);
      }
      const shift = (s: number) => {
        for (const [n, d] of dir) {
          const v = ps.get(n);
          tf.tidy(() => v.assign(tf.add(v, tf.tensor(d, v.shape).mul(s))));
        }
      };
      shift(h);
      const up = tf.tidy(() => lossFn().dataSync()[0]!);
      shift(-2 * h);
      const down = tf.tidy(() => lossFn().dataSync()[0]!);
      shift(h);
      const numeric = (up - down) / (2 * h);
      expect(Math.abs(numeric - analytic), `${[...dir.keys()].length === 1 ? [...dir.keys()][0] : 'all'}: ${numeric} vs ${analytic}`).toBeLessThan(
        2e-3 + 0.03 * Math.abs(analytic),
      );
    }
    for (const g of grads.values()) g.dispose();
    bank.dispose();
    disposeBatch(batch);
    ps.dispose();
  });
});

function randomUnit(rng: Rng, n: number, over = 1): Float32Array {
  const d = Float32Array.from({ length: n }, () => rng.normal());
  const norm = Math.hypot(...d) * over;
  return d.map((x) => x / norm);
}

async function trainCurve(seed: number, steps: number, onStep?: (i: number) => void): Promise<number[]> {
  const ps = new ParamStore(seed);
  defineSmke(ps, TINY);
  const opt = new AdamW(ps);
  const bank = new MemoryBank(8, TINY.teacherDim, seed);
  const batch = tinyBatch(seed);
  const curve: number[] = [];
  for (let i = 0; i < steps; i++) {
    const r = await (await smkeTrainStep(ps, TINY, opt, bank, [batch], 3e-3, 1.0)).read();
    curve.push(r.loss);
    onStep?.(i);
  }
  disposeBatch(batch);
  bank.dispose();
  opt.dispose();
  ps.dispose();
  return curve;
}

describe('S-SMKE training', () => {
  it('learns: the loss on a fixed batch falls', async () => {
    const curve = await trainCurve(1, 30);
    expect(curve[29]!).toBeLessThan(curve[0]! * 0.7);
  });

  it('is deterministic for a seed and backend', async () => {
    const a = await trainCurve(2, 4);
    const b = await trainCurve(2, 4);
    const c = await trainCurve(3, 4);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('leaks no tensors across steps', async () => {
    const counts: number[] = [];
    await trainCurve(4, 6, () => counts.push(tf.memory().numTensors));
    // AdamW creates its moments on the first step; from then on the count is flat.
    expect(counts.slice(1).every((c) => c === counts[1])).toBe(true);
  });

  it('gradient accumulation over two halves equals one full batch', async () => {
    const ps = new ParamStore(6);
    defineSmke(ps, TINY);
    const full = tinyBatch(21, 4);
    const half = (s: number) => ({
      images: full.images.slice([s, 0, 0, 0], [2, -1, -1, -1]) as tf.Tensor4D,
      text: { ids: full.text.ids.slice([s, 0], [2, -1]), mask: full.text.mask.slice([s, 0], [2, -1]) },
      teacher: full.teacher.slice([s, 0], [2, -1]) as tf.Tensor2D,
    });
    const bank = new MemoryBank(6, TINY.teacherDim, 1);
    const loss = (b: typeof full) => smkeLoss(ps, TINY, b.images, b.text, b.teacher, bank.tensor).total;
    // With a per-half loss the average of half gradients is the gradient of the mean of half losses.
    const ga = lossAndGrads(ps, () => ({ loss: loss(half(0)) })).grads;
    const gb = lossAndGrads(ps, () => ({ loss: loss(half(2)) })).grads;
    const opt1 = new AdamW(ps);
    const { GradAccumulator } = await import('../../src/ml/optim.js');
    const acc = new GradAccumulator();
    acc.add(ga);
    acc.add(gb);
    const mean = acc.mean();
    const direct = lossAndGrads(ps, () => ({ loss: tf.div(tf.add(loss(half(0)), loss(half(2))), 2) as tf.Scalar })).grads;
    for (const [n, g] of direct) {
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(g, mean.get(n)!))).dataSync()[0]!);
      expect(d, n).toBeLessThan(1e-5);
    }
    opt1.dispose();
    bank.dispose();
    ps.dispose();
  });
});

afterAll(() => undefined);

describe('in-batch KD (bank of size 0)', () => {
  it('a step with an empty bank uses the in-batch loss and leaves the bank empty', async () => {
    const { kdLoss } = await import('../../src/ml/losses.js');
    const ps = new ParamStore(8);
    defineSmke(ps, TINY);
    const opt = new AdamW(ps);
    const bank = new MemoryBank(0, TINY.teacherDim, 1);
    const batch = tinyBatch(5);
    const want = tf.tidy(() => {
      const l = smkeLoss(ps, TINY, batch.images, batch.text, batch.teacher, null);
      return l.kd.dataSync()[0]!;
    });
    const r = await (await smkeTrainStep(ps, TINY, opt, bank, [batch], 1e-3, 1)).read();
    expect(r.kd).toBeCloseTo(want, 5);
    expect(bank.tensor.shape).toEqual([0, TINY.teacherDim]);
    expect(typeof kdLoss).toBe('function');
    disposeBatch(batch);
    bank.dispose();
    opt.dispose();
    ps.dispose();
  });
});
