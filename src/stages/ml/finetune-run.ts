// Downstream finetuning (docs/method.md, "Metrics"):
// - finetune.text: a GLUE-format task; head = pooler(tanh) on the first token
//   -> dropout 0.1 -> linear (classes, or 1 output trained with MSE for
//   regression); each task's metrics on its evaluation split.
// - finetune.image: mean-pooled patch tokens -> LayerNorm -> linear; `linear`
//   trains only the head (linear probe), `full` the whole image encoder too.
// - finetune.retrieval: S-SMKE trained further with the CLIP loss on x.

import * as tf from '@tensorflow/tfjs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext } from '../stage-kind.js';
import { Rng, deriveSeed } from '../../data/rng.js';
import { TextTasks } from '../../data/text-tasks.js';
import type { TextExample, TextMetric } from '../../data/dataset-format.js';
import { loadModel, loadTokenizer, VOCAB_FILE, type AnyCheckpoint } from '../../ml/models.js';
import type { ParamStore } from '../../ml/params.js';
import { mlmHeadLogits } from '../../ml/text.js';
import { defineLayerNorm, defineLinear, layerNorm, linear, oneHotFloat } from '../../ml/layers.js';
import { accuracy, argmaxRows, f1, matthews, pearson, spearman } from '../../ml/metrics.js';
import { clipLoss, maskedTokenNll } from '../../ml/losses.js';
import { clampLogitScales } from '../../ml/smke.js';
import { saveCheckpoint } from '../../ml/checkpoint.js';
import { dirList, setupBackend, writeMetrics } from './common.js';
import { epochBatches, imageBatch, loadImageSplit } from './images.js';
import { imageConfig, imageEmbedding, imageTokens, textEmbedding, textMaxLen, textTokens, textWidth } from './encoders.js';
import type { FinetuneImageParams, FinetuneRetrievalParams, FinetuneTextParams } from './finetune.js';
import { concatFloats, inBatches, scheduleParams, trainLoop } from './loop.js';
import { loadPairs, pairBatch, textTensors } from './pairs.js';
import { stepStream, streamEvaluate } from './streaming.js';
import { ImageDataset } from '../../data/image-dataset.js';
import type { Encoded, WordPieceTokenizer } from '../../ml/tokenizer.js';
import { maskTokens } from './unimodal-run.js';

export function taskMetric(metric: TextMetric, pred: number[], gold: number[]): number {
  switch (metric) {
    case 'accuracy':
      return accuracy(pred, gold);
    case 'f1':
      return f1(pred, gold);
    case 'matthews':
      return matthews(pred, gold);
    case 'pearson':
      return pearson(pred, gold);
    case 'spearman':
      return spearman(pred, gold);
  }
}

/** Task-adaptive pretraining's settings (finetune.text's adapt_* parameters, defaults filled in). */
export interface AdaptOptions {
  steps: number;
  lr: number;
  maskRate: number;
  batchSize: number;
  warmup: number;
  clip: number;
  /**
   * 'mlm' masked language modelling; 'electra' that plus replaced-token detection (ELECTRA); 'pair_rtd'
   * replaced-token detection whose replacements the MLM head draws reading only the replaced side.
   */
  objective: 'mlm' | 'electra' | 'pair_rtd';
  /** Weight of the replaced-token detection loss (ELECTRA's 50). */
  rtdWeight: number;
  /**
   * With 'pair_rtd': weight of a pair-level detection (was any token of this pair replaced?) read from
   * the first token; half the pairs are left intact for it. 0: none.
   */
  pairWeight: number;
}

/**
 * BERT's masking of one encoded pair ([CLS] a [SEP] b [SEP] padding): the real tokens of both sides
 * can be masked, [CLS], [SEP] and padding never; the segment ids and attention mask are kept.
 */
export function maskPair(e: Encoded, tok: WordPieceTokenizer, rng: Rng, rate: number, side?: number): Encoded & { targets: number[] } {
  const special = tok.specialIds;
  // With `side`, only that side's tokens are candidates (the other side's read as special here).
  const ids = side === undefined ? e.ids : e.ids.map((x, j) => (e.segments[j] === side ? x : tok.pad));
  const { input, targets } = maskTokens(ids, special, tok.size, tok.maskId, rng, rate);
  return { ids: side === undefined ? input : input.map((x, j) => (e.segments[j] === side ? x : e.ids[j]!)), mask: e.mask, segments: e.segments, targets };
}

/**
 * Task-adaptive pretraining (Gururangan et al. 2020) before the classification head trains: masked
 * language modelling on the task's own training inputs, given as the pairs the classifier sees
 * (segment ids as for classification; labels are not read). A word of one side that the other side
 * holds can be recovered by finding it there: the content-addressed matching that the pair
 * tasks need (docs/ml.md, "Seventh attempt (GLUE pair tasks)"). The MLM head ('adapt.*') is new,
 * untied as train.mlm's is, and frozen afterwards. Returns the MLM loss on a fixed masked draw of
 * (up to) the first 128 training inputs before and after.
 */
export async function adaptToTask(
  ctx: StageContext,
  model: { ps: ParamStore; config: AnyCheckpoint },
  tok: WordPieceTokenizer,
  nTrain: number,
  read: (idx: number[]) => Promise<Encoded[]>,
  o: AdaptOptions,
): Promise<{ before: number; after: number; seconds: number }> {
  const d = textWidth(model);
  defineLinear(model.ps, 'adapt.transform', d, d);
  defineLayerNorm(model.ps, 'adapt.ln', d);
  defineLinear(model.ps, 'adapt.decoder', d, tok.size);
  const electra = o.objective === 'electra' || o.objective === 'pair_rtd';
  if (electra) defineLinear(model.ps, 'adapt.rtd', d, 1);
  const pairLevel = o.objective === 'pair_rtd' && o.pairWeight > 0;
  if (pairLevel) defineLinear(model.ps, 'adapt.pair', d, 1);
  const special = tok.specialIds;
  const mlmParts = (rows: (Encoded & { targets: number[] })[]) => {
    const logits = mlmHeadLogits(model.ps, 'adapt', textTokens(model, textTensors(rows)), d, 1e-12);
    return {
      loss: maskedTokenNll(
        logits,
        rows.flatMap((r) => r.targets),
      ),
      logits,
    };
  };
  const mlmLoss = (rows: (Encoded & { targets: number[] })[]) => mlmParts(rows).loss;
  // ELECTRA: every masked position takes a word drawn from the MLM head's softmax there (read back: no
  // gradient through the draw); the same encoder then reads the corrupted pair, and a per-token head
  // tells which real tokens differ from the original. A drawn word equal to the original counts as
  // original. Where the other side holds the word, a swapped one is told apart by comparing with it.
  const electraLoss = (orig: Encoded[], masked: (Encoded & { targets: number[] })[], rng: Rng, genMask?: number[][], intact?: boolean[]) => {
    const { loss: mlm, logits } = mlmParts(genMask ? masked.map((m, i) => ({ ...m, mask: genMask[i]! })) : masked);
    const t = orig[0]!.ids.length;
    const probs = tf.softmax(logits).dataSync();
    const replaced: number[] = [];
    const corrupt = masked.map((m, i) => {
      const ids = orig[i]!.ids.slice();
      m.targets.forEach((tgt, j) => {
        if (tgt < 0 || intact?.[i]) return;
        let u = rng.next();
        let tokId = 0;
        const base = (i * t + j) * tok.size;
        for (; tokId < tok.size - 1; tokId++) if ((u -= probs[base + tokId]!) < 0) break;
        if (!special.has(tokId)) ids[j] = tokId;
      });
      ids.forEach((x, j) => replaced.push(x !== orig[i]!.ids[j] ? 1 : 0));
      return { ids, mask: m.mask, segments: m.segments };
    });
    const weights = orig.flatMap((e) => e.ids.map((x) => (special.has(x) ? 0 : 1)));
    const h = textTokens(model, textTensors(corrupt));
    const rtdLogits = linear(model.ps, 'adapt.rtd', h).reshape([-1]);
    const rtd = tf.losses.sigmoidCrossEntropy(tf.tensor1d(replaced), rtdLogits, tf.tensor1d(weights)) as tf.Scalar;
    const total = tf.add(mlm, tf.mul(rtd, o.rtdWeight)) as tf.Scalar;
    if (!pairLevel) return total;
    const any = corrupt.map((c, i) => (c.ids.some((x, j) => x !== orig[i]!.ids[j]) ? 1 : 0));
    const pairLogits = linear(model.ps, 'adapt.pair', h.slice([0, 0, 0], [-1, 1, -1]).squeeze([1])).reshape([-1]);
    const pair = tf.losses.sigmoidCrossEntropy(tf.tensor1d(any), pairLogits) as tf.Scalar;
    return tf.add(total, tf.mul(pair, o.pairWeight)) as tf.Scalar;
  };
  const probeRng = new Rng(deriveSeed(ctx.seed, 'adapt-probe-mask'));
  const probe = (await read(Array.from({ length: Math.min(128, nTrain) }, (_, i) => i))).map((e) => maskPair(e, tok, probeRng, o.maskRate));
  const probeLoss = async () => {
    const t = tf.tidy(() => mlmLoss(probe));
    const v = (await t.data())[0]!;
    t.dispose();
    return v;
  };
  const before = await probeLoss();
  const batches = epochBatches(nTrain, o.batchSize, deriveSeed(ctx.seed, 'adapt'));
  let rows: Encoded[] = [];
  const { seconds } = await trainLoop({
    ctx,
    ps: model.ps,
    steps: o.steps,
    batchSize: o.batchSize,
    lr: o.lr,
    warmupFrac: o.warmup,
    clip: o.clip,
    metricPrefix: 'adapt_',
    prepare: async (step) => void (rows = await read(batches(step))),
    loss: (step) => {
      const rng = new Rng(deriveSeed(ctx.seed, 'adapt-mask', step));
      if (o.objective === 'pair_rtd') {
        // One side of each pair is masked, and the MLM head draws its replacements seeing that side alone
        // (the other side's tokens are masked out of attention): a drawn word fits its own sentence, and
        // the detector can tell it apart only by comparing with the other side.
        const sides = rows.map(() => rng.int(2));
        const masked = rows.map((e, i) => maskPair(e, tok, rng, o.maskRate, sides[i]));
        const genMask = rows.map((e, i) => e.mask.map((m, j) => (m && e.segments[j] === sides[i] ? 1 : 0)));
        const intact = pairLevel ? rows.map(() => rng.chance(0.5)) : undefined;
        return electraLoss(rows, masked, rng, genMask, intact);
      }
      const masked = rows.map((e) => maskPair(e, tok, rng, o.maskRate));
      return electra ? electraLoss(rows, masked, rng) : mlmLoss(masked);
    },
  });
  const after = await probeLoss();
  model.ps.setTrainable('adapt.', false);
  ctx.log.info(`task-adaptive ${o.objective}: ${o.steps} steps at lr ${o.lr}, probe loss ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  return { before, after, seconds };
}

export async function runFinetuneText(ctx: StageContext, p: FinetuneTextParams): Promise<void> {
  await setupBackend(ctx, p);
  const model = await loadModel(p.model, ctx.seed);
  const tok = await loadTokenizer(p.model);
  const tasks = await TextTasks.open(p.tasks);
  const task = p.task;
  const spec = tasks.spec(task);
  const maxLen = Math.min(p.max_len || textMaxLen(model), textMaxLen(model));
  const encode = (xs: TextExample[]) => xs.map((x) => tok.encode(x.text, x.text_pair, maxLen));
  // data = "stream": the splits stay on disk (only each record's offset is held); a step reads its
  // batch, evaluation reads the split in order. Same batches, so the same run as in memory.
  const streaming = p.data === 'stream';
  const trainSrc = streaming ? await tasks.index(task, 'train') : undefined;
  const evalSrc = streaming ? await tasks.index(task, spec.eval_split) : undefined;
  const trainEx = streaming ? undefined : await tasks.examples(task, 'train');
  const evalEx = streaming ? undefined : await tasks.examples(task, spec.eval_split);
  const nTrain = trainSrc?.length ?? trainEx!.length,
    nEval = evalSrc?.length ?? evalEx!.length;
  const regression = spec.problem === 'regression';
  const outDim = regression ? 1 : spec.labels.length;
  const d = textWidth(model);
  defineLinear(model.ps, 'cls.pooler', d, d);
  defineLinear(model.ps, 'cls.out', d, outDim);
  const forward = (examples: TextExample[], train: boolean, step = 0) => {
    const h = textTokens(model, textTensors(encode(examples)));
    let pooled: tf.Tensor = tf.tanh(linear(model.ps, 'cls.pooler', h.slice([0, 0, 0], [-1, 1, -1]).squeeze([1])));
    if (train) pooled = tf.dropout(pooled, 0.1, undefined, deriveSeed(ctx.seed, 'dropout', step));
    return linear(model.ps, 'cls.out', pooled);
  };
  const b = p.batch_size;
  // Task-adaptive pretraining: off unless adapt_steps is given (its parameters have no schema defaults).
  const adaptSteps = p.adapt_steps ?? 0;
  const adapted =
    adaptSteps > 0
      ? await adaptToTask(ctx, model, tok, nTrain, async (idx) => encode(trainEx ? idx.map((i) => trainEx[i]!) : await trainSrc!.read(idx)), {
          steps: adaptSteps,
          lr: p.adapt_lr ?? p.lr,
          maskRate: p.adapt_mask_rate ?? 0.15,
          batchSize: b,
          warmup: p.warmup,
          clip: p.clip,
          objective: p.adapt_objective ?? 'mlm',
          rtdWeight: p.adapt_rtd_weight ?? 50,
          pairWeight: p.adapt_pair_weight ?? 0,
        })
      : undefined;
  const batches = epochBatches(nTrain, b, ctx.seed);
  let fetched: TextExample[] = [];
  const examplesAt = (idx: number[]) => (trainEx ? idx.map((i) => trainEx[i]!) : fetched);
  let scores: Record<string, number> = {};
  try {
    const { finalLoss } = await trainLoop({
      ctx,
      ps: model.ps,
      ...scheduleParams(p),
      batchSize: b,
      ...(trainSrc ? { prepare: async (step: number) => void (fetched = await trainSrc.read(batches(step))) } : {}),
      loss: (step) => {
        const batch = examplesAt(batches(step));
        const out = forward(batch, true, step);
        const labels = batch.map((x) => x.label);
        if (regression) return tf.losses.meanSquaredError(tf.tensor2d(labels, [labels.length, 1]), out) as tf.Scalar;
        return tf.losses.softmaxCrossEntropy(oneHotFloat(tf.tensor1d(labels, 'int32'), outDim), out) as tf.Scalar;
      },
      evaluate: async (step) => {
        const rows: Float32Array[] = [];
        const gold: number[] = [];
        for (let i = 0; i < nEval; i += 64) {
          const idx = Array.from({ length: Math.min(64, nEval - i) }, (_, k) => i + k);
          const batch = evalEx ? idx.map((j) => evalEx[j]!) : await evalSrc!.read(idx);
          const t = tf.tidy(() => forward(batch, false));
          rows.push((await t.data()) as Float32Array);
          t.dispose();
          gold.push(...batch.map((x) => x.label));
        }
        const out = concatFloats(rows);
        const pred = regression ? Array.from(out) : argmaxRows(out, nEval, outDim);
        scores = {};
        for (const m of spec.metrics) scores[m] = taskMetric(m, pred, gold) * 100;
        ctx.metric(`eval_${spec.metric}`, scores[spec.metric]!, step);
      },
    });
    await writeMetrics(ctx, {
      task,
      metric: spec.metric,
      score: scores[spec.metric]!,
      ...scores,
      loss: finalLoss,
      train_examples: nTrain,
      eval_examples: nEval,
      ...(adapted
        ? { adapt_steps: adaptSteps, adapt_mlm_loss_before: adapted.before, adapt_mlm_loss_after: adapted.after, adapt_seconds: adapted.seconds }
        : {}),
    });
  } finally {
    await trainSrc?.close();
    await evalSrc?.close();
  }
  model.ps.dispose();
}

export async function runFinetuneImage(ctx: StageContext, p: FinetuneImageParams): Promise<void> {
  await setupBackend(ctx, p);
  const model = await loadModel(p.model, ctx.seed);
  const cfg = imageConfig(model);
  // data = "stream": batches come from the shards as the steps ask for them, evaluation streams the split.
  const streaming = p.data === 'stream';
  const train = streaming ? undefined : await loadImageSplit(p.images, 'train', cfg.imageSize, { signal: ctx.signal });
  const val = streaming ? undefined : await loadImageSplit(p.images, p.val_split, cfg.imageSize, { signal: ctx.signal });
  const nc = (train ?? (await ImageDataset.open(p.images, 'image-class'))).classes.length;
  if (!nc) throw new Error(`${p.images} is not an image-class dataset`);
  const mode = p.mode;
  // Linear probe: only the new head learns; full: the image encoder too. The text side never trains here.
  model.ps.setTrainable('', false);
  if (mode === 'full') model.ps.setTrainable('image.', true);
  model.ps.setTrainable('image.norm', false);
  defineLayerNorm(model.ps, 'probe.ln', cfg.dim);
  defineLinear(model.ps, 'probe.out', cfg.dim, nc);
  const pooled = (tokens: tf.Tensor) =>
    p.pool === 'cls' ? tokens.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]) : tf.mean(tokens.slice([0, 1, 0], [-1, -1, -1]), 1);
  const logits = (images: tf.Tensor) => linear(model.ps, 'probe.out', layerNorm(model.ps, 'probe.ln', pooled(imageTokens(model, images)), 1e-6));
  const s = cfg.imageSize,
    b = p.batch_size;
  const labels = (split: NonNullable<typeof train>, idx: number[]) => idx.map((i) => split.records[i]!.label!);
  const batches = train ? epochBatches(train.records.length, b, ctx.seed) : undefined;
  const stream = streaming ? await stepStream([p.images], b, ctx.seed, s, ctx.signal) : undefined;
  let acc = 0;
  const { finalLoss } = await trainLoop({
    ctx,
    ps: model.ps,
    steps: p.steps,
    batchSize: b,
    lr: p.lr || (mode === 'linear' ? 1e-2 : 2e-3),
    warmupFrac: p.warmup,
    clip: p.clip,
    evalEvery: p.eval_every,
    weightDecay: p.weight_decay,
    ...(stream ? { prepare: stream.prepare } : {}),
    loss: (step) => {
      if (stream) {
        const sb = stream.batch;
        return tf.losses.softmaxCrossEntropy(
          oneHotFloat(tf.tensor1d(sb.labels!, 'int32'), nc),
          logits(tf.tensor4d(sb.images!, [sb.size, s, s, 3])),
        ) as tf.Scalar;
      }
      const idx = batches!(step);
      const x = tf.tensor4d(imageBatch(train!, idx, new Rng(deriveSeed(ctx.seed, 'aug', step))), [idx.length, s, s, 3]);
      return tf.losses.softmaxCrossEntropy(oneHotFloat(tf.tensor1d(labels(train!, idx), 'int32'), nc), logits(x)) as tf.Scalar;
    },
    evaluate: async (step) => {
      if (!val) {
        const ev = await streamEvaluate([p.images], p.val_split, s, 64, (x, k) => logits(tf.tensor4d(x, [k, s, s, 3])), ctx.signal);
        acc = accuracy(argmaxRows(ev.data, ev.rows, nc), ev.labels) * 100;
        ctx.metric('val_accuracy', acc, step);
        return;
      }
      const out = await inBatches(val.records.length, 64, (idx) => logits(tf.tensor4d(imageBatch(val, idx), [idx.length, s, s, 3])));
      acc =
        accuracy(
          argmaxRows(out.data, val.records.length, nc),
          labels(
            val,
            val.records.map((_, i) => i),
          ),
        ) * 100;
      ctx.metric('val_accuracy', acc, step);
    },
  });
  await stream?.close();
  await writeMetrics(ctx, {
    mode,
    accuracy: acc,
    loss: finalLoss,
    classes: nc,
    trainable_params: model.ps.trainableNames().reduce((t, k) => t + model.ps.get(k).size, 0),
  });
  model.ps.dispose();
}

export async function runFinetuneRetrieval(ctx: StageContext, p: FinetuneRetrievalParams): Promise<void> {
  await setupBackend(ctx, p);
  const model = await loadModel(p.model, ctx.seed);
  if (model.config.model !== 's_smke') throw new Error(`finetune.retrieval needs an S-SMKE checkpoint, got '${model.config.model}'`);
  const tok = await loadTokenizer(p.model);
  const cfg = model.config.smke;
  const streaming = p.data === 'stream';
  const train = streaming ? undefined : await loadPairs(dirList(p.pairs), 'train', cfg.image.imageSize, tok, cfg.text.maxLen, { signal: ctx.signal });
  const b = p.batch_size,
    size = cfg.image.imageSize;
  const batches = train ? epochBatches(train.images.records.length, b, ctx.seed) : undefined;
  const stream = streaming ? await stepStream(dirList(p.pairs), b, ctx.seed, size, ctx.signal) : undefined;
  // Only the path to x learns: the KD head and the x_interm scale get no gradient from this loss.
  model.ps.setTrainable('kd.', false);
  model.ps.setTrainable('scale.interm', false);
  const { finalLoss } = await trainLoop({
    ctx,
    ps: model.ps,
    ...scheduleParams(p),
    batchSize: b,
    ...(stream ? { prepare: stream.prepare } : {}),
    loss: (step) => {
      const sb = stream?.batch;
      const { images, text } = sb
        ? { images: tf.tensor4d(sb.images!, [sb.size, size, size, 3]), text: textTensors(sb.captions!.map((c) => tok.encode(c, undefined, cfg.text.maxLen))) }
        : pairBatch(train!, batches!(step), new Rng(deriveSeed(ctx.seed, 'aug', step)));
      return clipLoss(imageEmbedding(model, images), textEmbedding(model, text), model.ps.get('scale.out'));
    },
    afterStep: () => clampLogitScales(model.ps),
  });
  await stream?.close();
  model.ps.setTrainable('', true);
  const out = join(ctx.outDir, 'model');
  await saveCheckpoint(out, model.ps, { ...model.config, trained_by: 'finetune.retrieval' });
  await copyFile(join(p.model, VOCAB_FILE), join(out, VOCAB_FILE));
  await writeMetrics(ctx, { loss: finalLoss, steps: p.steps });
  model.ps.dispose();
}
