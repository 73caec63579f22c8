import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainSmke } from '../../src/stages/ml/s-smke.js';
import { finetuneImage, finetuneRetrieval, finetuneText } from '../../src/stages/ml/finetune.js';
import { evalRetrieval, evalZeroshot } from '../../src/stages/eval/eval.js';
import { registry } from '../../src/stages/registry.js';
import { loadModel } from '../../src/ml/models.js';
import { makeCtx, pretrainedFixture, runKind, type Pretrained, type Recorded, smkeInputs } from './harness.js';

let root: string;
let fx: Pretrained;
let smke: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-ml-down-'));
  fx = await pretrainedFixture(root);
  const { ctx } = await makeCtx(root, 'smke');
  await runKind(trainSmke, ctx, {
    ...smkeInputs(fx),
    layers: 2,
    shared_heads: 2,
    batch_size: 16,
    bank_size: 32,
    steps: 30,
    val_every: 30,
    lr: 3e-3,
  });
  smke = join(ctx.outDir, 'model');
}, 180_000);
afterAll(() => rm(root, { recursive: true, force: true }));

const metricsOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8'));
const series = (rec: Recorded, name: string) => rec.metrics.filter((m) => m.name === name && m.step !== undefined).map((m) => m.value);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('registration', () => {
  it('every ml and eval kind is registered and its descriptor loads without tfjs', () => {
    const names = registry().names();
    for (const k of [
      'train.teacher',
      'train.image_encoder',
      'train.mlm',
      'train.s_smke',
      'finetune.text',
      'finetune.image',
      'finetune.retrieval',
      'eval.zeroshot',
      'eval.retrieval',
    ])
      expect(names).toContain(k);
  });
});

describe('finetune.text', () => {
  it('classification (SST-2-like) from S-SMKE: accuracy reported, loss falls', async () => {
    const { ctx, rec } = await makeCtx(root, 'glue-sst2');
    await runKind(finetuneText, ctx, { model: smke, tasks: join(fx.syn, 'glue'), task: 'sst2', steps: 60, batch_size: 16, eval_every: 60, lr: 3e-3 });
    const m = await metricsOf(ctx.outDir);
    expect(m.metric).toBe('accuracy');
    expect(m.score).toBe(m.accuracy);
    expect(m.score).toBeGreaterThanOrEqual(0);
    expect(m.score).toBeLessThanOrEqual(100);
    const l = series(rec, 'loss');
    expect(mean(l.slice(-10))).toBeLessThan(mean(l.slice(0, 10)));
  }, 120_000);

  it('regression (STS-B-like) from the MLM encoder: MSE head, Spearman and Pearson', async () => {
    const { ctx, rec } = await makeCtx(root, 'glue-stsb');
    await runKind(finetuneText, ctx, { model: fx.text, tasks: join(fx.syn, 'glue'), task: 'stsb', steps: 60, batch_size: 16, eval_every: 60, lr: 3e-3 });
    const m = await metricsOf(ctx.outDir);
    expect(m.metric).toBe('spearman');
    expect(Number.isFinite(m.pearson)).toBe(true);
    const l = series(rec, 'loss');
    expect(mean(l.slice(-10))).toBeLessThan(mean(l.slice(0, 10)));
  }, 120_000);

  it('MRPC-like pairs report F1 and accuracy', async () => {
    const { ctx } = await makeCtx(root, 'glue-mrpc');
    await runKind(finetuneText, ctx, { model: smke, tasks: join(fx.syn, 'glue'), task: 'mrpc', steps: 10, batch_size: 16 });
    const m = await metricsOf(ctx.outDir);
    expect(m.metric).toBe('f1');
    expect(m).toHaveProperty('accuracy');
  }, 120_000);
});

describe('finetune.image', () => {
  it('linear probe trains only the head; full finetune trains the encoder too; both learn', async () => {
    const lin = await makeCtx(root, 'img-linear');
    await runKind(finetuneImage, lin.ctx, {
      model: smke,
      images: join(fx.syn, 'classify'),
      mode: 'linear',
      steps: 60,
      batch_size: 16,
      eval_every: 60,
      lr: 1e-2,
    });
    const full = await makeCtx(root, 'img-full');
    await runKind(finetuneImage, full.ctx, {
      model: smke,
      images: join(fx.syn, 'classify'),
      mode: 'full',
      steps: 60,
      batch_size: 16,
      eval_every: 60,
      lr: 3e-3,
    });
    const ml = await metricsOf(lin.ctx.outDir),
      mf = await metricsOf(full.ctx.outDir);
    // head = LN (2 x 16) + linear (16 x 4 + 4)
    expect(ml.trainable_params).toBe(2 * 16 + 16 * 4 + 4);
    expect(mf.trainable_params).toBeGreaterThan(ml.trainable_params * 10);
    for (const r of [lin.rec, full.rec]) {
      const l = series(r, 'loss');
      expect(mean(l.slice(-10))).toBeLessThan(mean(l.slice(0, 10)));
    }
  }, 120_000);
});

describe('retrieval', () => {
  it('finetune.retrieval lowers the ITC loss and writes an S-SMKE checkpoint; eval.retrieval scores it', async () => {
    const ft = await makeCtx(root, 'ret-ft');
    await runKind(finetuneRetrieval, ft.ctx, { model: smke, pairs: [join(fx.syn, 'coco')], steps: 40, batch_size: 16, lr: 3e-3 });
    const l = series(ft.rec, 'loss');
    expect(mean(l.slice(-8))).toBeLessThan(mean(l.slice(0, 8)));
    const { config, ps } = await loadModel(join(ft.ctx.outDir, 'model'));
    expect(config.model).toBe('s_smke');
    ps.dispose();

    const ev = await makeCtx(root, 'ret-eval');
    await runKind(evalRetrieval, ev.ctx, { model: join(ft.ctx.outDir, 'model'), pairs: join(fx.syn, 'coco'), split: 'test' });
    const m = await metricsOf(ev.ctx.outDir);
    expect(m.images).toBe(16);
    expect(m.captions).toBe(80);
    expect(m.tr1).toBeLessThanOrEqual(m.tr5);
    expect(m.tr5).toBeLessThanOrEqual(m.tr10);
    expect(m.ir1).toBeLessThanOrEqual(m.ir5);
    expect(m.ir5).toBeLessThanOrEqual(m.ir10);
    expect(m.r1_mean).toBeCloseTo((m.tr1 + m.ir1) / 2, 10);
    // 16 images: IR@10 by chance is 10/16; a trained model does better on its own training domain
    expect(m.ir10).toBeGreaterThan(0);
  }, 120_000);
});

describe('eval.zeroshot', () => {
  it('classifies from prompts averaged over templates', async () => {
    const { ctx } = await makeCtx(root, 'zs');
    await runKind(evalZeroshot, ctx, { model: smke, images: join(fx.syn, 'classify'), templates: ['a photo of a {}.', 'a {}'] });
    const m = await metricsOf(ctx.outDir);
    expect(m.classes).toBe(4);
    expect(m.templates).toBe(2);
    expect(m.top1).toBeGreaterThanOrEqual(0);
    expect(m.top1).toBeLessThanOrEqual(m.top5);
    expect(m.top5).toBe(100); // only 4 classes
  }, 120_000);

  it('rejects a checkpoint that is not S-SMKE', async () => {
    const { ctx } = await makeCtx(root, 'zs-bad');
    await expect(runKind(evalZeroshot, ctx, { model: fx.teacher, images: join(fx.syn, 'classify') })).rejects.toThrow(/S-SMKE checkpoint/);
  });
});
