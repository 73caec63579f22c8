import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { data2vecLoss, data2vecTargets, emaDecay, emaUpdate, initTeacher, instanceNormTokens, layerNormPlain } from '../../src/ml/data2vec.js';
import type { BlockOutput } from '../../src/ml/layers.js';
import { ParamStore } from '../../src/ml/params.js';
import { loadModel } from '../../src/ml/models.js';
import { Rng } from '../../src/data/rng.js';
import { trainImageEncoder } from '../../src/stages/ml/unimodal.js';
import { makeCtx, runKind, tinySynthetic } from './harness.js';

// Plain-JS references written from the definitions (not from the code under test).
type Arr3 = number[][][];
const rand3 = (b: number, t: number, d: number, rng: Rng): Arr3 =>
  Array.from({ length: b }, () => Array.from({ length: t }, () => Array.from({ length: d }, () => rng.normal() * 3 + 1)));
const meanVar = (xs: number[]) => {
  const m = xs.reduce((a, c) => a + c, 0) / xs.length;
  return { m, v: xs.reduce((a, c) => a + (c - m) ** 2, 0) / xs.length };
};
function refInstanceNorm(x: Arr3, eps = 1e-5): Arr3 {
  return x.map((ex) => {
    const d = ex[0]!.length;
    const stats = Array.from({ length: d }, (_, j) => meanVar(ex.map((tok) => tok[j]!)));
    return ex.map((tok) => tok.map((v, j) => (v - stats[j]!.m) / Math.sqrt(stats[j]!.v + eps)));
  });
}
const refLayerNormRow = (row: number[], eps = 1e-5) => {
  const { m, v } = meanVar(row);
  return row.map((x) => (x - m) / Math.sqrt(v + eps));
};
const avg3 = (xs: Arr3[]): Arr3 => xs[0]!.map((ex, b) => ex.map((tok, t) => tok.map((_, j) => xs.reduce((s, x) => s + x[b]![t]![j]!, 0) / xs.length)));
const close = (a: number[], b: number[], tol = 1e-4) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(Math.abs(x - b[i]!)).toBeLessThan(tol));
};
const fakeBlocks = (mlps: Arr3[]): BlockOutput[] => mlps.map((m) => ({ out: tf.tensor(m), interm: tf.tensor(m), mlp: tf.tensor(m) }));

describe('data2vec targets and loss', () => {
  it('instance-normalises each feature over the tokens of its example', () => {
    for (const [b, t, d] of [
      [1, 3, 2],
      [2, 5, 4],
      [3, 17, 8],
    ] as const) {
      const x = rand3(b, t, d, new Rng(b * 100 + t));
      close(Array.from(instanceNormTokens(tf.tensor(x)).dataSync()), refInstanceNorm(x).flat(2));
    }
  });

  it('layer-normalises rows without affine parameters', () => {
    const x = rand3(2, 3, 6, new Rng(5));
    close(
      Array.from(layerNormPlain(tf.tensor(x)).dataSync()),
      x.flatMap((ex) => ex.flatMap((row) => refLayerNormRow(row))),
    );
  });

  it('builds IN -> average of the top K -> LN over the patch tokens, and the CLS target from the patches mean', () => {
    const rng = new Rng(11);
    const [b, t, d] = [2, 5, 4];
    const layers = [rand3(b, t, d, rng), rand3(b, t, d, rng), rand3(b, t, d, rng)];
    const patchesOf = (x: Arr3) => x.map((ex) => ex.slice(1));
    for (const k of [1, 2, 3]) {
      const top = layers.slice(3 - k).map(patchesOf);
      const got = data2vecTargets(fakeBlocks(layers), k);
      expect(got.patches.shape).toEqual([b, t - 1, d]);
      const wantPatches = avg3(top.map((x) => refInstanceNorm(x))).map((ex) => ex.map((row) => refLayerNormRow(row)));
      close(Array.from(got.patches.dataSync()), wantPatches.flat(2));
      // CLS: per layer the patches' mean feature, layer-normalised; averaged over the K layers; layer-normalised.
      const wantCls = Array.from({ length: b }, (_, e) => {
        const perLayer = top.map((x) => refLayerNormRow(Array.from({ length: d }, (_, j) => meanVar(x[e]!.map((tok) => tok[j]!)).m)));
        return refLayerNormRow(Array.from({ length: d }, (_, j) => perLayer.reduce((s, r) => s + r[j]!, 0) / k));
      });
      close(Array.from(got.cls.dataSync()), wantCls.flat());
    }
  });

  it('refuses a top K outside 1..blocks', () => {
    const layers = fakeBlocks([rand3(1, 3, 2, new Rng(1)), rand3(1, 3, 2, new Rng(2))]);
    expect(() => data2vecTargets(layers, 0)).toThrow(/between 1 and the encoder's 2 blocks, got 0/);
    expect(() => data2vecTargets(layers, 3)).toThrow(/got 3/);
  });

  it('regresses hidden patches only, plus the weighted CLS error', () => {
    // B=1, 2 patches + CLS, D=2.
    const pred = tf.tensor([
      [
        [1, 1],
        [0, 2],
        [5, 5],
      ],
    ]);
    const target = {
      patches: tf.tensor([
        [
          [1, 0],
          [4, 1],
        ],
      ]),
      cls: tf.tensor([[0, 0]]),
    };
    // Patch 0 hidden: error mean((0-1)^2, (2-0)^2) = 2.5; patch 1 visible (ignored). CLS error mean(1, 1) = 1.
    expect(data2vecLoss(pred, target, tf.tensor([[1, 0]]), 0).dataSync()[0]).toBeCloseTo(2.5, 6);
    expect(data2vecLoss(pred, target, tf.tensor([[1, 0]]), 0.5).dataSync()[0]).toBeCloseTo(3.0, 6);
    // Both hidden: (2.5 + mean(1, 16)) / 2 = 5.5.
    expect(data2vecLoss(pred, target, tf.tensor([[1, 1]]), 0).dataSync()[0]).toBeCloseTo(5.5, 6);
  });

  it('anneals the EMA decay linearly and moves the teacher towards the student', () => {
    expect(emaDecay(0, 11, 0.9, 1)).toBeCloseTo(0.9, 12);
    expect(emaDecay(5, 11, 0.9, 1)).toBeCloseTo(0.95, 12);
    expect(emaDecay(10, 11, 0.9, 1)).toBeCloseTo(1, 12);
    expect(emaDecay(50, 11, 0.9, 1)).toBeCloseTo(1, 12);
    expect(emaDecay(0, 1, 0.9, 0.99)).toBeCloseTo(0.99, 12);
    const student = new ParamStore(1),
      teacher = new ParamStore(2);
    for (const ps of [student, teacher]) {
      ps.add('w', [2, 2], { kind: 'normal', std: 1 });
      ps.add('b', [2], { kind: 'const', value: 0 });
    }
    initTeacher(teacher, student);
    expect(Array.from(teacher.get('w').dataSync())).toEqual(Array.from(student.get('w').dataSync()));
    expect(teacher.trainableNames()).toEqual([]);
    student.get('b').assign(tf.tensor1d([1, -2]));
    emaUpdate(teacher, student, 0.75);
    close(Array.from(teacher.get('b').dataSync()), [0.25, -0.5], 1e-7);
    emaUpdate(teacher, student, 0.5);
    close(Array.from(teacher.get('b').dataSync()), [0.625, -1.25], 1e-7);
  });
});

describe('train.image_encoder with the data2vec target', () => {
  let root: string;
  let syn: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'smke-d2v-'));
    syn = await tinySynthetic();
  });
  afterAll(() => rm(root, { recursive: true, force: true }));
  const small = { image_size: 16, patch_size: 4, width: 16, depth: 2, heads: 2, mlp_ratio: 2, batch_size: 16 };

  it('trains, keeps the targets from collapsing, and writes a loadable encoder', async () => {
    const { ctx, rec } = await makeCtx(root, 'd2v');
    await runKind(trainImageEncoder, ctx, { images: join(syn, 'coco'), ...small, target: 'data2vec', mask_ratio: 0.6, steps: 40, eval_every: 40, lr: 3e-3 });
    const losses = rec.metrics.filter((x) => x.name === 'loss' && x.step !== undefined).map((x) => x.value);
    expect(losses).toHaveLength(40);
    expect(losses.every(Number.isFinite)).toBe(true);
    // Targets are normalised features (variance 1 per row): a student that predicts
    // nothing scores about 1 per patch; a collapsed teacher would let the loss go to ~0.
    const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(tail).toBeLessThan(losses[0]!);
    expect(tail).toBeGreaterThan(0.05);
    const m = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
    expect(Number.isFinite(m.val_loss)).toBe(true);
    const { config, ps } = await loadModel(join(ctx.outDir, 'model'));
    expect(config.model).toBe('vit');
    expect(String(config.objective)).toMatch(/data2vec/);
    ps.dispose();
  }, 300_000);

  it('says when top_k exceeds the depth', async () => {
    const { ctx } = await makeCtx(root, 'd2v-bad');
    await expect(runKind(trainImageEncoder, ctx, { images: join(syn, 'coco'), ...small, target: 'data2vec', top_k: 3, steps: 2 })).rejects.toThrow(
      /top_k 3 exceeds the encoder's depth 2/,
    );
  }, 60_000);
});
