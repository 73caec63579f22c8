// eval.zeroshot and eval.retrieval on S-SMKE checkpoints built to fail in a
// known way (no training needed): a constant model must score nothing at k=1
// (ties count against it), and a model whose embeddings hold NaN must fail the
// stage naming the row and the input, not report a score.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalRetrieval, evalZeroshot } from '../../src/stages/eval/eval.js';
import { saveCheckpoint } from '../../src/ml/checkpoint.js';
import { VOCAB_FILE } from '../../src/ml/models.js';
import { ParamStore } from '../../src/ml/params.js';
import { defineSmke, type SmkeConfig } from '../../src/ml/smke.js';
import { WordPieceTokenizer } from '../../src/ml/tokenizer.js';
import { makeCtx, runKind, tinySynthetic } from './harness.js';

let root: string;
let syn: string;
const models: Record<'constant' | 'nanImage' | 'nanText', string> = { constant: '', nanImage: '', nanText: '' };

/** An untrained 16 px S-SMKE checkpoint, with `edit` applied to its parameters. */
async function checkpoint(name: string, edit: (ps: ParamStore, d: number) => void): Promise<string> {
  const tok = WordPieceTokenizer.build(['a photo of the red blue green cube sphere cone on a background'], 100);
  const cfg: SmkeConfig = {
    image: { imageSize: 16, patchSize: 4, channels: 3, dim: 8, depth: 1, heads: 2, mlpRatio: 2, eps: 1e-6, layerScale: 0.1 },
    text: { vocabSize: tok.size, maxLen: 16, dim: 8, depth: 1, heads: 2, mlpRatio: 2, eps: 1e-12 },
    sharedHeads: 2,
    sharedMlpRatio: 2,
    teacherDim: 6,
  };
  const ps = new ParamStore(3);
  defineSmke(ps, cfg);
  edit(ps, 8);
  const dir = join(root, name);
  await saveCheckpoint(dir, ps, { model: 's_smke', smke: cfg });
  await writeFile(join(dir, VOCAB_FILE), tok.toVocabText());
  ps.dispose();
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-ml-eval-'));
  syn = await tinySynthetic();
  // Constant: the shared block adds nothing (LayerScale 0) to a type embedding so
  // large (1e12) that the encoders' output is lost in f32 rounding, and both
  // types share one row: every image and every text embeds to the same vector.
  models.constant = await checkpoint('constant', (ps, d) => {
    ps.get('shared.ls1').assign(tf.zeros([d]));
    ps.get('shared.ls2').assign(tf.zeros([d]));
    ps.get('token_type.scale').assign(tf.fill([d], 1e12));
    ps.get('token_type.table').assign(tf.tensor2d([Array.from({ length: d }, (_, i) => (i % 3) - 1), Array.from({ length: d }, (_, i) => (i % 3) - 1)]));
  });
  const nanRow = (type: 0 | 1) => (ps: ParamStore, d: number) => {
    const rows = ps.get('token_type.table').arraySync() as number[][];
    rows[type] = new Array(d).fill(NaN);
    ps.get('token_type.table').assign(tf.tensor2d(rows));
  };
  models.nanImage = await checkpoint('nan-image', nanRow(1));
  models.nanText = await checkpoint('nan-text', nanRow(0));
}, 120_000);
afterAll(() => rm(root, { recursive: true, force: true }));

const metricsOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8'));

describe('eval.zeroshot', () => {
  it('a constant model scores top-1 = 0: ties count against it (it used to report 100)', async () => {
    const { ctx } = await makeCtx(root, 'zs-constant');
    await runKind(evalZeroshot, ctx, { model: models.constant, images: join(syn, 'classify'), templates: ['a photo of a {}.', 'a {}'] });
    const m = await metricsOf(ctx.outDir);
    expect(m.classes).toBe(4);
    expect(m.top1).toBe(0);
    expect(m.top5).toBe(100); // 4 classes: every rank is within 5
  });

  it('NaN image embeddings fail the stage, naming the image and the input', async () => {
    const { ctx } = await makeCtx(root, 'zs-nan-image');
    await expect(runKind(evalZeroshot, ctx, { model: models.nanImage, images: join(syn, 'classify') })).rejects.toThrow(
      /embedding of image 0 \('[^']+'\) of input images \(.*classify, split val\) has NaN in dimension 0: the checkpoint .*nan-image produces non-finite outputs/,
    );
  });

  it('NaN text embeddings fail the stage, naming the prompt', async () => {
    const { ctx } = await makeCtx(root, 'zs-nan-text');
    await expect(runKind(evalZeroshot, ctx, { model: models.nanText, images: join(syn, 'classify'), templates: ['a photo of a {}.'] })).rejects.toThrow(
      /embedding of prompt 0 \("a photo of a [^"]+\.", class '[^']+'\) of input templates has NaN/,
    );
  });
});

describe('eval.retrieval', () => {
  it('a constant model gets no hits at k=1 in either direction', async () => {
    const { ctx } = await makeCtx(root, 'ret-constant');
    await runKind(evalRetrieval, ctx, { model: models.constant, pairs: join(syn, 'coco'), split: 'test' });
    const m = await metricsOf(ctx.outDir);
    expect(m.images).toBe(16);
    expect([m.tr1, m.ir1, m.r1_mean]).toEqual([0, 0, 0]);
    // 16 images: IR@10 counts 15 wrong images ahead of every true one
    expect(m.ir10).toBe(0);
  });

  it('NaN embeddings fail the stage, naming the image or the caption and the pairs input', async () => {
    const a = await makeCtx(root, 'ret-nan-image');
    await expect(runKind(evalRetrieval, a.ctx, { model: models.nanImage, pairs: join(syn, 'coco'), split: 'test' })).rejects.toThrow(
      /embedding of image 0 \('[^']+'\) of input pairs \(.*coco, split test\) has NaN/,
    );
    const b = await makeCtx(root, 'ret-nan-text');
    await expect(runKind(evalRetrieval, b.ctx, { model: models.nanText, pairs: join(syn, 'coco'), split: 'test' })).rejects.toThrow(
      /embedding of caption 0 \("[^"]+", of image '[^']+'\) of input pairs \(.*coco, split test\) has NaN/,
    );
  });
});

describe('data = "stream": the split is read from its shards, never held whole', () => {
  it('eval.retrieval and eval.zeroshot score a model exactly as the in-memory path does (one and two datasets)', async () => {
    const random = await checkpoint('random', () => {});
    const runs: [typeof evalRetrieval, Record<string, string | string[]>][] = [
      [evalRetrieval, { pairs: join(syn, 'coco'), split: 'test' }],
      [evalRetrieval, { pairs: [join(syn, 'coco'), join(syn, 'flickr')], split: 'test' }],
      [evalZeroshot, { images: join(syn, 'classify'), templates: ['a photo of a {}.', 'a {}'] }],
    ];
    for (const [i, [kind, params]] of runs.entries()) {
      const got: Record<string, number>[] = [];
      for (const data of ['stream', 'memory']) {
        const { ctx } = await makeCtx(root, `stream-eq-${i}-${data}`);
        await runKind(kind, ctx, { model: random, ...params, data });
        got.push(await metricsOf(ctx.outDir));
      }
      expect(got[0], `${kind.name} ${JSON.stringify(params)}`).toEqual(got[1]);
    }
    // The two-dataset run saw both datasets' test images (16 + 8).
    const { ctx } = await makeCtx(root, 'stream-eq-count');
    await runKind(evalRetrieval, ctx, { model: random, pairs: [join(syn, 'coco'), join(syn, 'flickr')], split: 'test', data: 'stream' });
    expect((await metricsOf(ctx.outDir)).images).toBe(24);
  });

  it('a NaN embedding still fails the streamed stage, naming the image', async () => {
    const { ctx } = await makeCtx(root, 'zs-nan-stream');
    await expect(runKind(evalZeroshot, ctx, { model: models.nanImage, images: join(syn, 'classify'), data: 'stream' })).rejects.toThrow(
      /embedding of image 0 \('[^']+'\) of input images \(.*classify, split val\) has NaN/,
    );
  });
});
