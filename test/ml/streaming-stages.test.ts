// data = "stream" in the finetuning kinds: training batches come from the
// shards step by step, evaluation streams the whole split.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finetuneImage, finetuneRetrieval, finetuneText } from '../../src/stages/ml/finetune.js';
import { trainSmke } from '../../src/stages/ml/s-smke.js';
import { makeCtx, pretrainedFixture, runKind, type Pretrained, type Recorded, smkeInputs } from './harness.js';

let root: string;
let fx: Pretrained;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-ml-stream-'));
  fx = await pretrainedFixture(root);
}, 180_000);
afterAll(() => rm(root, { recursive: true, force: true }));

const metricsOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8'));
const series = (rec: Recorded, name: string) => rec.metrics.filter((m) => m.name === name && m.step !== undefined).map((m) => m.value);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('streamed finetuning', () => {
  it('finetune.image: a streamed linear probe learns, and streamed evaluation scores a model as the in-memory one does', async () => {
    const images = join(fx.syn, 'classify');
    const lin = await makeCtx(root, 'img-stream');
    await runKind(finetuneImage, lin.ctx, { model: fx.image, images, mode: 'linear', steps: 60, batch_size: 16, eval_every: 60, lr: 1e-2, data: 'stream' });
    const l = series(lin.rec, 'loss');
    expect(l).toHaveLength(60);
    expect(mean(l.slice(-10))).toBeLessThan(mean(l.slice(0, 10)));
    expect((await metricsOf(lin.ctx.outDir)).accuracy).toBeGreaterThan(25); // 4 classes
    // With a learning rate too small to move the head, both paths evaluate the same model on the same images.
    const accs: number[] = [];
    for (const data of ['stream', 'memory']) {
      const c = await makeCtx(root, `img-eval-${data}`);
      await runKind(finetuneImage, c.ctx, { model: fx.image, images, mode: 'linear', steps: 1, batch_size: 16, eval_every: 1, lr: 1e-12, data });
      accs.push((await metricsOf(c.ctx.outDir)).accuracy);
    }
    expect(accs[0]).toBe(accs[1]);
  }, 180_000);

  it('train.s_smke then finetune.retrieval, both streamed: losses fall', async () => {
    const s = await makeCtx(root, 'smke-stream');
    await runKind(trainSmke, s.ctx, {
      ...smkeInputs(fx),
      layers: 1,
      shared_heads: 2,
      batch_size: 16,
      bank_size: 32,
      steps: 24,
      val_every: 24,
      checkpoint_every: 24,
      lr: 3e-3,
      data: 'stream',
    });
    const ls = series(s.rec, 'loss');
    expect(mean(ls.slice(-6))).toBeLessThan(mean(ls.slice(0, 6)));
    const ft = await makeCtx(root, 'ret-stream');
    await runKind(finetuneRetrieval, ft.ctx, {
      model: join(s.ctx.outDir, 'model'),
      pairs: [join(fx.syn, 'coco')],
      steps: 30,
      batch_size: 16,
      lr: 3e-3,
      data: 'stream',
    });
    const lr = series(ft.rec, 'loss');
    expect(mean(lr.slice(-8))).toBeLessThan(mean(lr.slice(0, 8)));
  }, 180_000);

  it('finetune.text: streamed splits give the run the in-memory ones give (classification and regression)', async () => {
    for (const task of ['sst2', 'stsb']) {
      const runs: { loss: number[]; metrics: Record<string, unknown> }[] = [];
      for (const data of ['stream', 'memory']) {
        const c = await makeCtx(root, `text-${task}-${data}`);
        await runKind(finetuneText, c.ctx, { model: fx.text, tasks: join(fx.syn, 'glue'), task, steps: 12, batch_size: 8, eval_every: 6, lr: 3e-3, data });
        runs.push({ loss: series(c.rec, 'loss'), metrics: await metricsOf(c.ctx.outDir) });
      }
      expect(runs[0]!.loss).toHaveLength(12);
      expect(runs[0], task).toEqual(runs[1]);
    }
  }, 180_000);
});
