// finetune.text's task-adaptive pretraining (adapt_steps): masked language modelling on the task's
// own training pairs before the classifier trains, and its replaced-token-detection variants.

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainMlm } from '../../src/stages/ml/unimodal.js';
import { finetuneText } from '../../src/stages/ml/finetune.js';
import { maskPair } from '../../src/stages/ml/finetune-run.js';
import { loadTokenizer } from '../../src/ml/models.js';
import { TextTasks } from '../../src/data/text-tasks.js';
import { Rng } from '../../src/data/rng.js';
import { makeCtx, runKind, tinySynthetic } from './harness.js';

let root: string;
let syn: string;
let text: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-ml-adapt-'));
  syn = await tinySynthetic();
  const { ctx } = await makeCtx(root, 'mlm');
  await runKind(trainMlm, ctx, {
    corpus: join(syn, 'corpus'),
    vocab_size: 200,
    max_len: 24,
    width: 16,
    heads: 2,
    depth: 2,
    batch_size: 16,
    steps: 30,
    lr: 3e-3,
  });
  text = join(ctx.outDir, 'model');
}, 120_000);
afterAll(() => rm(root, { recursive: true, force: true }));

const metricsOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8'));

describe('maskPair', () => {
  it('masks real tokens of both sides, never [CLS], [SEP] or padding; with a side, only that side', async () => {
    const tok = await loadTokenizer(text);
    const tasks = await TextTasks.open(join(syn, 'glue'));
    const pairs = (await tasks.examples('mrpc', 'train')).map((x) => tok.encode(x.text, x.text_pair, 24));
    const special = new Set([tok.pad, tok.cls, tok.sep]);
    const rng = new Rng(3);
    const maskedPerSide = [0, 0];
    let real = 0,
      masked = 0;
    for (const e of pairs) {
      const m = maskPair(e, tok, rng, 0.15);
      expect(m.mask).toEqual(e.mask);
      expect(m.segments).toEqual(e.segments);
      m.targets.forEach((t, j) => {
        if (special.has(e.ids[j]!)) expect(t).toBe(-1);
        if (t < 0) expect(m.ids[j]).toBe(e.ids[j]);
        else {
          expect(t).toBe(e.ids[j]);
          maskedPerSide[e.segments[j]!]!++;
          masked++;
        }
      });
      real += e.ids.filter((x) => !special.has(x)).length;
      for (const side of [0, 1]) {
        const s = maskPair(e, tok, rng, 0.3, side);
        s.targets.forEach((t, j) => {
          if (e.segments[j] !== side || special.has(e.ids[j]!)) {
            expect(t).toBe(-1);
            expect(s.ids[j]).toBe(e.ids[j]);
          }
        });
        expect(s.targets.some((t) => t >= 0)).toBe(true);
      }
    }
    expect(maskedPerSide[0]).toBeGreaterThan(0);
    expect(maskedPerSide[1]).toBeGreaterThan(0);
    expect(masked / real).toBeGreaterThan(0.1);
    expect(masked / real).toBeLessThan(0.25);
  });
});

describe('finetune.text adapt_steps', () => {
  const base = { model: '', tasks: '', task: 'mrpc', steps: 2, batch_size: 16, eval_every: 2, lr: 1e-3 };

  it('lowers the MLM loss on the task pairs, under metrics of its own; without adapt_steps nothing of it runs', async () => {
    const { ctx, rec } = await makeCtx(root, 'adapt-mlm');
    await runKind(finetuneText, ctx, { ...base, model: text, tasks: join(syn, 'glue'), adapt_steps: 40, adapt_lr: 3e-3 });
    const m = await metricsOf(ctx.outDir);
    expect(m.adapt_steps).toBe(40);
    expect(m.adapt_mlm_loss_after).toBeLessThan(m.adapt_mlm_loss_before - 0.3);
    expect(rec.metrics.filter((x) => x.name === 'adapt_loss')).toHaveLength(40);
    expect(rec.metrics.filter((x) => x.name === 'loss' && x.step !== undefined)).toHaveLength(2);
    const off = await makeCtx(root, 'adapt-off');
    await runKind(finetuneText, off.ctx, { ...base, model: text, tasks: join(syn, 'glue') });
    const o = await metricsOf(off.ctx.outDir);
    expect(o.adapt_steps).toBeUndefined();
    expect(off.rec.metrics.some((x) => x.name.startsWith('adapt_'))).toBe(false);
  }, 120_000);

  it('does not read the labels: the same adaptation with every training label flipped', async () => {
    const flipped = join(root, 'glue-flipped');
    await cp(join(syn, 'glue'), flipped, { recursive: true });
    const file = join(flipped, 'mrpc', 'train.jsonl');
    const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim());
    await writeFile(file, lines.map((l) => JSON.stringify({ ...JSON.parse(l), label: 1 - JSON.parse(l).label })).join('\n') + '\n');
    const scores: number[][] = [];
    for (const [name, tasks] of [
      ['adapt-labels', join(syn, 'glue')],
      ['adapt-flipped', flipped],
    ] as const) {
      const { ctx } = await makeCtx(root, name);
      await runKind(finetuneText, ctx, { ...base, model: text, tasks, adapt_steps: 10, adapt_lr: 3e-3 });
      const m = await metricsOf(ctx.outDir);
      scores.push([m.adapt_mlm_loss_before, m.adapt_mlm_loss_after]);
    }
    expect(scores[1]).toEqual(scores[0]);
  }, 120_000);

  it("reads the same pairs with data = 'stream' as in memory", async () => {
    const losses: number[][] = [];
    for (const data of ['memory', 'stream']) {
      const { ctx } = await makeCtx(root, `adapt-${data}`);
      await runKind(finetuneText, ctx, { ...base, model: text, tasks: join(syn, 'glue'), adapt_steps: 8, adapt_lr: 3e-3, data });
      const m = await metricsOf(ctx.outDir);
      losses.push([m.adapt_mlm_loss_before, m.adapt_mlm_loss_after]);
    }
    expect(losses[1]).toEqual(losses[0]);
  }, 120_000);

  it.each([
    ['electra', {}],
    ['pair_rtd', { adapt_pair_weight: 1 }],
  ])(
    'adapt_objective %s trains with finite losses',
    async (objective, extra) => {
      const { ctx, rec } = await makeCtx(root, `adapt-${objective}`);
      await runKind(finetuneText, ctx, {
        ...base,
        model: text,
        tasks: join(syn, 'glue'),
        adapt_steps: 6,
        adapt_lr: 3e-3,
        adapt_objective: objective,
        ...extra,
      });
      const l = rec.metrics.filter((x) => x.name === 'adapt_loss').map((x) => x.value);
      expect(l).toHaveLength(6);
      for (const v of l) expect(Number.isFinite(v)).toBe(true);
      const m = await metricsOf(ctx.outDir);
      expect(Number.isFinite(m.score)).toBe(true);
    },
    120_000,
  );
});
