import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ntXentAccuracy, ntXentLoss } from '../../src/ml/contrastive.js';
import { loadModel } from '../../src/ml/models.js';
import { Rng } from '../../src/data/rng.js';
import { imageBatch, loadImageSplit, viewBatch } from '../../src/stages/ml/images.js';
import { trainImageEncoder } from '../../src/stages/ml/unimodal.js';
import { finetuneImage } from '../../src/stages/ml/finetune.js';
import { makeCtx, runKind, tinySynthetic } from './harness.js';

// NT-Xent written from SimCLR's definition with plain loops (not from the code under test).
function refNtXent(z1: number[][], z2: number[][], t: number): number {
  const u = [...z1, ...z2].map((r) => {
    const n = Math.sqrt(r.reduce((a, x) => a + x * x, 0));
    return r.map((x) => x / n);
  });
  const b = z1.length,
    n = 2 * b;
  const dot = (a: number[], c: number[]) => a.reduce((s, x, k) => s + x * c[k]!, 0);
  let total = 0;
  for (let a = 0; a < n; a++) {
    const pos = a < b ? a + b : a - b;
    let denom = 0;
    for (let c = 0; c < n; c++) if (c !== a) denom += Math.exp(dot(u[a]!, u[c]!) / t);
    total += -Math.log(Math.exp(dot(u[a]!, u[pos]!) / t) / denom);
  }
  return total / n;
}
const loss = (z1: number[][], z2: number[][], t: number) => ntXentLoss(tf.tensor2d(z1), tf.tensor2d(z2), t).dataSync()[0]!;

describe('NT-Xent (SimCLR)', () => {
  it('matches hand computations', () => {
    // Two orthogonal images, identical views, t = 1: each row sees its partner at cosine 1 and two others at 0,
    // so every row's loss is -log(e / (e + 2)) = log(1 + 2/e).
    expect(
      loss(
        [
          [1, 0],
          [0, 1],
        ],
        [
          [1, 0],
          [0, 1],
        ],
        1,
      ),
    ).toBeCloseTo(Math.log(1 + 2 / Math.E), 5);
    // Scale does not matter (cosines): the same case with rows of other lengths.
    expect(
      loss(
        [
          [3, 0],
          [0, 0.5],
        ],
        [
          [7, 0],
          [0, 2],
        ],
        1,
      ),
    ).toBeCloseTo(Math.log(1 + 2 / Math.E), 5);
    // Partners swapped (each view's partner is orthogonal to it, the other image's view identical):
    // -log(1 / (1 + e + 1)) = log(2 + e), at t = 1.
    expect(
      loss(
        [
          [1, 0],
          [0, 1],
        ],
        [
          [0, 1],
          [1, 0],
        ],
        1,
      ),
    ).toBeCloseTo(Math.log(2 + Math.E), 5);
    // t = 0.5 in the first case: cosines / t = 2 and 0: log(1 + 2 / e^2).
    expect(
      loss(
        [
          [1, 0],
          [0, 1],
        ],
        [
          [1, 0],
          [0, 1],
        ],
        0.5,
      ),
    ).toBeCloseTo(Math.log(1 + 2 / Math.E ** 2), 5);
    // All views equal: chance, log(2B - 1), whatever t.
    expect(
      loss(
        [
          [1, 1],
          [1, 1],
          [1, 1],
        ],
        [
          [2, 2],
          [1, 1],
          [3, 3],
        ],
        0.1,
      ),
    ).toBeCloseTo(Math.log(5), 4);
  });

  it('matches the plain-loop reference on random projections', () => {
    for (const [b, p, t] of [
      [2, 3, 0.2],
      [5, 4, 0.5],
      [8, 16, 0.1],
    ] as const) {
      const rng = new Rng(b * 31 + p);
      const draw = () => Array.from({ length: b }, () => Array.from({ length: p }, () => rng.normal()));
      const z1 = draw(),
        z2 = draw();
      expect(loss(z1, z2, t)).toBeCloseTo(refNtXent(z1, z2, t), 4);
    }
  });

  it('refuses a batch of one, and counts partners found first', () => {
    expect(() => ntXentLoss(tf.tensor2d([[1, 0]]), tf.tensor2d([[1, 0]]), 1)).toThrow(/at least 2/);
    // Image 0's views agree, image 1's second view is nearer image 0's: rows 0, 2 hit; row 1 (0,1) finds
    // row 3 (0.6,0.8) at 0.8 over row 0/2 at 0; row 3 finds row 1 at 0.8 over rows 0/2 at 0.6: all 4 hit.
    expect(
      ntXentAccuracy(
        tf.tensor2d([
          [1, 0],
          [0, 1],
        ]),
        tf.tensor2d([
          [1, 0],
          [0.6, 0.8],
        ]),
      ),
    ).toBe(1);
    // Swapped partners: no row finds its own.
    expect(
      ntXentAccuracy(
        tf.tensor2d([
          [1, 0],
          [0, 1],
        ]),
        tf.tensor2d([
          [0, 1],
          [1, 0],
        ]),
      ),
    ).toBe(0);
  });

  it('a few gradient steps on free projections reduce it', () => {
    const rng = new Rng(3);
    const z1 = tf.variable(tf.tensor2d(Array.from({ length: 6 }, () => Array.from({ length: 4 }, () => rng.normal()))));
    const z2 = tf.variable(tf.tensor2d(Array.from({ length: 6 }, () => Array.from({ length: 4 }, () => rng.normal()))));
    const opt = tf.train.sgd(0.5);
    const f = () => ntXentLoss(z1, z2, 0.5);
    const before = f().dataSync()[0]!;
    for (let i = 0; i < 20; i++) opt.minimize(f);
    expect(f().dataSync()[0]!).toBeLessThan(before - 0.3);
  });
});

describe('train.image_encoder with the simclr target', () => {
  let root: string;
  let syn: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'smke-simclr-'));
    syn = await tinySynthetic();
  });
  afterAll(() => rm(root, { recursive: true, force: true }));
  const small = { image_size: 16, patch_size: 4, width: 16, depth: 2, heads: 2, mlp_ratio: 2, batch_size: 16 };

  it('views are crops without colour jitter: a full crop without flip is the plain image', async () => {
    const split = await loadImageSplit(join(syn, 'coco'), 'train', 16, { limit: 4 });
    const idx = [0, 1, 2, 3];
    const plain = imageBatch(split, idx);
    const views = viewBatch(split, idx, new Rng(1), { scaleMin: 1, flip: false });
    expect(Array.from(views.subarray(0, plain.length))).toEqual(Array.from(plain));
    expect(Array.from(views.subarray(plain.length))).toEqual(Array.from(plain));
    // Smaller crops differ between the two views.
    const crops = viewBatch(split, idx, new Rng(1), { scaleMin: 0.5, flip: false });
    expect(Array.from(crops.subarray(0, plain.length))).not.toEqual(Array.from(crops.subarray(plain.length)));
  }, 60_000);

  it('trains (the loss falls from chance), and writes a loadable encoder', async () => {
    const { ctx, rec } = await makeCtx(root, 'simclr');
    await runKind(trainImageEncoder, ctx, { images: join(syn, 'coco'), ...small, target: 'simclr', steps: 30, eval_every: 30, lr: 3e-3 });
    const losses = rec.metrics.filter((x) => x.name === 'loss' && x.step !== undefined).map((x) => x.value);
    expect(losses).toHaveLength(30);
    expect(losses.every(Number.isFinite)).toBe(true);
    // Chance for a batch of 16 is log(31) = 3.43; the first step is near it.
    expect(Math.abs(losses[0]! - Math.log(31))).toBeLessThan(0.5);
    const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(tail).toBeLessThan(losses[0]! - 0.3);
    const m = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
    expect(Number.isFinite(m.val_loss)).toBe(true);
    expect(m.val_view_accuracy).toBeGreaterThan(100 / 31);
    const { config, ps } = await loadModel(join(ctx.outDir, 'model'));
    expect(config.model).toBe('vit');
    expect(String(config.objective)).toMatch(/simclr/);
    ps.dispose();
    // The probe gate reads the CLS with finetune.image pool = "cls": only the head trains.
    const probe = await makeCtx(root, 'simclr-probe');
    await runKind(finetuneImage, probe.ctx, {
      model: join(ctx.outDir, 'model'),
      images: join(syn, 'classify'),
      mode: 'linear',
      pool: 'cls',
      steps: 5,
      eval_every: 5,
      batch_size: 8,
    });
    const pm = JSON.parse(await readFile(join(probe.ctx.outDir, 'metrics.json'), 'utf8'));
    expect(pm.accuracy).toBeGreaterThanOrEqual(0);
    expect(pm.accuracy).toBeLessThanOrEqual(100);
    expect(pm.trainable_params).toBe(2 * 16 + 16 * 4 + 4);
  }, 300_000);
});
