import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainImageEncoder, trainMlm, trainTeacher } from '../../src/stages/ml/unimodal.js';
import { loadModel, loadTokenizer } from '../../src/ml/models.js';
import { maskTokens } from '../../src/stages/ml/unimodal-run.js';
import { Rng } from '../../src/data/rng.js';
import { readCorpus } from '../../src/data/text-tasks.js';
import { expectSteadyThroughput, makeCtx, runKind, tinySynthetic } from './harness.js';

let root: string;
let syn: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-ml-uni-'));
  syn = await tinySynthetic();
});
afterAll(() => rm(root, { recursive: true, force: true }));

const small = { image_size: 16, patch_size: 4, width: 16, depth: 2, heads: 2, mlp_ratio: 2, batch_size: 16 };

describe('unimodal pretraining kinds', () => {
  it('train.teacher learns the classes and writes a loadable vit checkpoint', async () => {
    const { ctx, rec } = await makeCtx(root, 'teacher');
    await runKind(trainTeacher, ctx, { images: join(syn, 'classify'), ...small, steps: 150, eval_every: 75, lr: 3e-3 });
    const m = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
    // 4 classes: chance is 25%.
    expect(m.val_accuracy).toBeGreaterThan(40);
    const losses = rec.metrics.filter((x) => x.name === 'loss' && x.step !== undefined);
    expect(losses).toHaveLength(150);
    expect(losses.at(-1)!.value).toBeLessThan(losses[0]!.value);
    expect(rec.metrics.some((x) => x.name === 'lr' && x.step === 1)).toBe(true);
    expectSteadyThroughput(rec.metrics, 150);
    expect(rec.progress.at(-1)).toEqual({ done: 150, total: 150, unit: 'steps' });
    expect(rec.logs.some((l) => l.includes('tfjs backend: wasm'))).toBe(true);
    const { config, ps } = await loadModel(join(ctx.outDir, 'model'));
    expect(config.model).toBe('vit');
    ps.dispose();
  }, 120_000);

  it('train.image_encoder lowers the masked-patch reconstruction loss', async () => {
    const { ctx, rec } = await makeCtx(root, 'imgenc');
    await runKind(trainImageEncoder, ctx, { images: join(syn, 'coco'), ...small, steps: 40, eval_every: 40, lr: 3e-3 });
    const losses = rec.metrics.filter((x) => x.name === 'loss').map((x) => x.value);
    const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5,
      tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(tail).toBeLessThan(head * 0.9);
    const m = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
    expect(Number.isFinite(m.val_loss)).toBe(true);
  }, 120_000);

  it('train.mlm lowers the MLM loss and ships its vocabulary', async () => {
    const { ctx, rec } = await makeCtx(root, 'mlm');
    await runKind(trainMlm, ctx, {
      corpus: join(syn, 'corpus'),
      vocab_size: 200,
      max_len: 16,
      width: 32,
      depth: 2,
      heads: 2,
      batch_size: 16,
      steps: 250,
      eval_every: 250,
      lr: 1e-2,
    });
    const tok = await loadTokenizer(join(ctx.outDir, 'model'));
    expect(tok.size).toBeLessThanOrEqual(200);
    expect(tok.tokenize('a red circle')).not.toContain(tok.unk);
    // Beating the corpus's unigram entropy means the encoder uses context, not just token frequencies.
    const counts = new Map<number, number>();
    let total = 0;
    for (const l of await readCorpus(join(syn, 'corpus')))
      for (const t of tok.tokenize(l)) {
        counts.set(t, (counts.get(t) ?? 0) + 1);
        total++;
      }
    let unigram = 0;
    for (const c of counts.values()) unigram -= (c / total) * Math.log(c / total);
    const m = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
    expect(m.val_loss).toBeLessThan(unigram - 0.1);
    expect(rec.metrics.some((x) => x.name === 'val_loss')).toBe(true);
    // The sentence objective is off by default: no two views, no sentence metrics.
    expect(m.val_sentence_loss).toBeUndefined();
    expect(rec.metrics.some((x) => x.name === 'val_sentence_loss')).toBe(false);
  }, 120_000);

  it('train.mlm with the sentence objective alone lowers the two-view InfoNCE over the CLS', async () => {
    const { ctx, rec } = await makeCtx(root, 'mlm-sentence');
    const steps = 30;
    await runKind(trainMlm, ctx, {
      corpus: join(syn, 'corpus'),
      vocab_size: 200,
      max_len: 16,
      width: 32,
      depth: 2,
      heads: 2,
      batch_size: 16,
      steps,
      eval_every: steps,
      lr: 3e-3,
      sentence_weight: 1,
      mlm_weight: 0,
    });
    // With mlm_weight 0 the training loss is the InfoNCE alone: log(16) ~ 2.77 for a CLS that tells no sentence apart.
    const losses = rec.metrics.filter((x) => x.name === 'loss' && x.step !== undefined).map((x) => x.value);
    expect(losses).toHaveLength(steps);
    const head = losses.slice(0, 3).reduce((a, b) => a + b) / 3,
      tail = losses.slice(-3).reduce((a, b) => a + b) / 3;
    expect(tail).toBeLessThan(head * 0.7);
    const m = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
    expect(m.val_sentence_loss).toBeLessThan(Math.log(16));
    expect(m.val_sentence_accuracy).toBeGreaterThan(100 / 16);
    expect(Number.isFinite(m.val_loss)).toBe(true);
    const { config, ps } = await loadModel(join(ctx.outDir, 'model'));
    expect(config.model).toBe('text');
    ps.dispose();
  }, 120_000);

  it('train.mlm with the decoder objective and with hard negatives runs and lowers its loss', async () => {
    for (const extra of [{ sentence_objective: 'decoder' }, { sentence_hard_negatives: true }] as Record<string, string | boolean>[]) {
      const { ctx, rec } = await makeCtx(root, `mlm-${Object.keys(extra)[0]}`);
      const steps = 30;
      await runKind(trainMlm, ctx, {
        corpus: join(syn, 'corpus'),
        vocab_size: 200,
        max_len: 16,
        width: 32,
        depth: 2,
        heads: 2,
        batch_size: 16,
        steps,
        eval_every: steps,
        lr: 3e-3,
        sentence_weight: 1,
        ...extra,
      });
      const losses = rec.metrics.filter((x) => x.name === 'loss' && x.step !== undefined).map((x) => x.value);
      const head = losses.slice(0, 3).reduce((a, b) => a + b) / 3,
        tail = losses.slice(-3).reduce((a, b) => a + b) / 3;
      expect(tail).toBeLessThan(head * 0.9);
      const m = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
      expect(Number.isFinite(m.val_sentence_loss)).toBe(true);
      expect(Number.isFinite(m.val_loss)).toBe(true);
    }
  }, 120_000);
});

describe('BERT masking', () => {
  it('masks about 15% of non-special tokens, never specials, always at least one', () => {
    const rng = new Rng(3);
    let masked = 0,
      total = 0;
    for (let r = 0; r < 200; r++) {
      const ids = [2, ...Array.from({ length: 20 }, (_, i) => 10 + i), 3, 0, 0];
      const { input, targets } = maskTokens(ids, new Set([0, 1, 2, 3, 4]), 50, 4, rng);
      expect(targets[0]).toBe(-1);
      expect(targets.slice(-3)).toEqual([-1, -1, -1]);
      expect(targets.some((t) => t >= 0)).toBe(true);
      targets.forEach((t, i) => {
        if (t >= 0) {
          masked++;
          expect(t).toBe(ids[i]);
        } else expect(input[i]).toBe(ids[i]);
      });
      total += 20;
    }
    expect(masked / total).toBeGreaterThan(0.12);
    expect(masked / total).toBeLessThan(0.18);
  });
});
