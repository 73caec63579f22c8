import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainSmke } from '../../src/stages/ml/s-smke.js';
import { loadModel } from '../../src/ml/models.js';
import { decodeSafetensors } from '../../src/ml/safetensors.js';
import { expectSteadyThroughput, makeCtx, pretrainedFixture, runKind, type Pretrained, smkeInputs } from './harness.js';

let root: string;
let fx: Pretrained;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-ml-smke-'));
  fx = await pretrainedFixture(root);
}, 120_000);
afterAll(() => rm(root, { recursive: true, force: true }));

const base = () => ({
  ...smkeInputs(fx),
  layers: 1,
  shared_heads: 2,
  batch_size: 16,
  bank_size: 32,
  val_batches: 1,
});

describe('train.s_smke', () => {
  it('trains from truncated pretrained encoders: loss falls, validation reported, checkpoint loads', async () => {
    const { ctx, rec } = await makeCtx(root, 'smke-a');
    await runKind(trainSmke, ctx, { ...base(), steps: 60, val_every: 30, checkpoint_every: 30, lr: 3e-3 });
    const series = (name: string) => rec.metrics.filter((m) => m.name === name && m.step !== undefined).map((m) => m.value);
    expect(series('loss')).toHaveLength(60);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // Both losses learn: KD towards the teacher and image-text alignment.
    for (const name of ['loss', 'loss_kd', 'loss_itc']) expect(mean(series(name).slice(-8)), name).toBeLessThan(mean(series(name).slice(0, 8)) - 0.1);
    for (const name of ['loss_kd', 'loss_itc', 'lr', 'throughput', 'val_loss', 'val_kdAcc', 'val_itcAcc'])
      expect(
        rec.metrics.some((m) => m.name === name && m.step !== undefined),
        name,
      ).toBe(true);
    expect(rec.metrics.filter((m) => m.name === 'val_loss' && m.step !== undefined).map((m) => m.step)).toEqual([30, 60]);
    expectSteadyThroughput(rec.metrics, 60);
    // logit scales stay clamped
    for (const m of rec.metrics.filter((x) => x.name.startsWith('logit_scale'))) expect(m.value).toBeLessThanOrEqual(Math.log(100) + 1e-6);
    const metrics = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
    expect(metrics.steps).toBe(60);
    expect(metrics.val_kd_accuracy).toBeGreaterThan(100 / 16); // better than chance in a batch of 16
    const { ps, config } = await loadModel(join(ctx.outDir, 'model'));
    expect(config.model).toBe('s_smke');
    // truncation: 1 block kept of the 2 pretrained ones, and its weights are the pretrained ones at the start
    expect(ps.names('image.blocks.1.')).toEqual([]);
    ps.dispose();
    const raw = decodeSafetensors(await readFile(join(ctx.outDir, 'model', 'model.safetensors')));
    expect(raw.tensors.has('token_type.scale')).toBe(true);
    expect((await readdir(join(ctx.outDir, 'model'))).sort()).toEqual(['config.json', 'model.safetensors', 'vocab.txt']);
  }, 120_000);

  it('ablations: init = random starts from fresh weights; bank_size = 0 trains with in-batch KD and resumes', async () => {
    const params = { ...base(), init: 'random', bank_size: 0, steps: 4, val_every: 4, checkpoint_every: 2, lr: 2e-3 };
    const ac = new AbortController();
    // A seed of its own: the fixtures were initialised from seed 7, and so would a random S-SMKE be.
    const first = await makeCtx(root, 'smke-abl', { signal: ac.signal, seed: 99 });
    const progress = first.ctx.progress;
    first.ctx.progress = (done, total, unit) => {
      progress(done, total, unit);
      if (done === 3) ac.abort(new Error('killed'));
    };
    await expect(runKind(trainSmke, first.ctx, params)).rejects.toThrow();
    const again = await makeCtx(root, 'smke-abl', { scratchDir: first.ctx.scratchDir, seed: 99 });
    await runKind(trainSmke, again.ctx, params);
    expect(again.rec.logs.join('\n')).toContain('resuming from step 2');
    const metrics = JSON.parse(await readFile(join(again.ctx.outDir, 'metrics.json'), 'utf8'));
    expect(Number.isFinite(metrics.loss_kd)).toBe(true);
    // A random init differs from the pretrained encoder it would otherwise copy, even after 4 small steps.
    const trained = await loadModel(join(again.ctx.outDir, 'model'));
    const pre = await loadModel(fx.image);
    const diff = (await trained.ps.get('image.blocks.0.mlp.fc1.w').data()).some(
      (v, i) => Math.abs(v - pre.ps.get('image.blocks.0.mlp.fc1.w').dataSync()[i]!) > 0.05,
    );
    expect(diff).toBe(true);
    trained.ps.dispose();
    pre.ps.dispose();
  }, 120_000);

  it('resumes from its last checkpoint after a crash and ends exactly where an uninterrupted run does', async () => {
    const params = { ...base(), steps: 12, val_every: 12, checkpoint_every: 4, lr: 2e-3 };
    const full = await makeCtx(root, 'smke-full');
    await runKind(trainSmke, full.ctx, params);
    const want = JSON.parse(await readFile(join(full.ctx.outDir, 'metrics.json'), 'utf8'));

    const ac = new AbortController();
    const crashed = await makeCtx(root, 'smke-crash', { signal: ac.signal });
    const progress = crashed.ctx.progress;
    crashed.ctx.progress = (done, total, unit) => {
      progress(done, total, unit);
      if (done === 6) ac.abort(new Error('killed'));
    };
    await expect(runKind(trainSmke, crashed.ctx, params)).rejects.toThrow();
    expect(crashed.rec.metrics.filter((m) => m.name === 'loss').length).toBe(6);

    const again = await makeCtx(root, 'smke-crash', { scratchDir: crashed.ctx.scratchDir });
    await runKind(trainSmke, again.ctx, params);
    expect(again.rec.logs.some((l) => l.includes('resuming from step 4'))).toBe(true);
    expect(again.rec.metrics.filter((m) => m.name === 'loss' && m.step !== undefined)[0]!.step).toBe(5);
    const got = JSON.parse(await readFile(join(again.ctx.outDir, 'metrics.json'), 'utf8'));
    expect(got.resumed_from).toBe(4);
    expect(got.loss).toBeCloseTo(want.loss, 5);
    expect(got.val_loss).toBeCloseTo(want.val_loss, 5);
  }, 120_000);
});
