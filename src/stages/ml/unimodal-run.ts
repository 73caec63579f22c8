// The mini profile's stand-ins for the pretrained unimodal models:
// - train.teacher: a ViT trained supervised on the named-class image set
//   (BEiTv2's role: a strong frozen image model to distil from);
// - train.image_encoder: a ViT trained self-supervised by masked image
//   modelling (hidden patches' normalised pixels regressed, SimMIM-style, or
//   an EMA teacher's features, data2vec-style; Data2Vec2's role);
// - train.mlm: a BERT-style encoder trained by masked language modelling on
//   the text corpus, with a WordPiece vocabulary built from that corpus.

import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import type { StageContext } from '../stage-kind.js';
import { Rng, deriveSeed } from '../../data/rng.js';
import { readCorpus } from '../../data/text-tasks.js';
import { ParamStore } from '../../ml/params.js';
import { defineVit, numPatches, patchify, vitForward, type VitConfig } from '../../ml/vit.js';
import { defineText, mlmHeadLogits, textBlockConfig, textForward, type TextConfig } from '../../ml/text.js';
import {
  block,
  defineBlock,
  defineLayerNorm,
  defineLinear,
  embed,
  gelu,
  l2normalize,
  layerNorm,
  linear,
  maskToBias,
  oneHotFloat,
  type BlockOutput,
} from '../../ml/layers.js';
import { data2vecLoss, data2vecTargets, emaDecay, emaUpdate, initTeacher, layerNormPlain } from '../../ml/data2vec.js';
import { ntXentAccuracy, ntXentLoss } from '../../ml/contrastive.js';
import { saveCheckpoint } from '../../ml/checkpoint.js';
import { VOCAB_FILE } from '../../ml/models.js';
import { WordPieceTokenizer } from '../../ml/tokenizer.js';
import { argmaxRows, accuracy } from '../../ml/metrics.js';
import { diagonalAccuracy, infoNceLoss, maskedTokenNll } from '../../ml/losses.js';
import { setupBackend, writeMetrics } from './common.js';
import type { TrainImageEncoderParams, TrainMlmParams, TrainTeacherParams } from './unimodal.js';
import { epochBatches, imageBatch, loadImageSplit, viewBatch } from './images.js';
import { inBatches, scheduleParams, trainLoop } from './loop.js';

// Initial weights come from (seed, kind): with one pipeline-wide seed, two
// kinds building the same architecture would otherwise start identical.
export function vitConfigFrom(p: TrainTeacherParams | TrainImageEncoderParams): VitConfig {
  return {
    imageSize: p.image_size,
    patchSize: p.patch_size,
    channels: 3,
    dim: p.width,
    depth: p.depth,
    heads: p.heads,
    mlpRatio: p.mlp_ratio,
    eps: 1e-6,
    layerScale: 0.1,
  };
}

export async function runTeacher(ctx: StageContext, p: TrainTeacherParams): Promise<void> {
  await setupBackend(ctx, p);
  const cfg = vitConfigFrom(p);
  const train = await loadImageSplit(p.images, 'train', cfg.imageSize, { signal: ctx.signal });
  const val = await loadImageSplit(p.images, p.val_split, cfg.imageSize, { signal: ctx.signal });
  if (!train.classes.length) throw new Error(`${p.images} is not an image-class dataset`);
  const nc = train.classes.length;
  const ps = new ParamStore(deriveSeed(ctx.seed, 'init', 'train.teacher'));
  defineVit(ps, 'image', cfg);
  defineLinear(ps, 'head', cfg.dim, nc);
  const labels = (split: typeof train, idx: number[]) => idx.map((i) => split.records[i]!.label!);
  const batches = epochBatches(train.records.length, p.batch_size, ctx.seed);
  const logits = (images: tf.Tensor) => linear(ps, 'head', vitForward(ps, 'image', cfg, images).slice([0, 0, 0], [-1, 1, -1]).squeeze([1]));
  let valAcc = 0;
  const { finalLoss } = await trainLoop({
    ctx,
    ps,
    ...scheduleParams(p),
    batchSize: p.batch_size,
    loss: (step) => {
      const idx = batches(step);
      const x = tf.tensor4d(imageBatch(train, idx, new Rng(deriveSeed(ctx.seed, 'aug', step))), [idx.length, cfg.imageSize, cfg.imageSize, 3]);
      const y = oneHotFloat(tf.tensor1d(labels(train, idx), 'int32'), nc);
      return tf.losses.softmaxCrossEntropy(y, logits(x)) as tf.Scalar;
    },
    evaluate: async (step) => {
      const out = await inBatches(val.records.length, 64, (idx) => logits(tf.tensor4d(imageBatch(val, idx), [idx.length, cfg.imageSize, cfg.imageSize, 3])));
      valAcc = accuracy(
        argmaxRows(out.data, val.records.length, nc),
        labels(
          val,
          val.records.map((_, i) => i),
        ),
      );
      ctx.metric('val_accuracy', valAcc, step);
    },
  });
  await saveCheckpoint(join(ctx.outDir, 'model'), ps, { model: 'vit', vit: cfg, classes: train.classes, trained_by: 'train.teacher' });
  await writeMetrics(ctx, { loss: finalLoss, val_accuracy: valAcc * 100, params: ps.count('image.') });
  ps.dispose();
}

export async function runImageEncoder(ctx: StageContext, p: TrainImageEncoderParams): Promise<void> {
  await setupBackend(ctx, p);
  const cfg = vitConfigFrom(p);
  const train = await loadImageSplit(p.images, 'train', cfg.imageSize, { signal: ctx.signal });
  const val = await loadImageSplit(p.images, p.val_split, cfg.imageSize, { limit: 256, signal: ctx.signal });
  const ps = new ParamStore(deriveSeed(ctx.seed, 'init', 'train.image_encoder'));
  defineVit(ps, 'image', cfg, { maskToken: true });
  const d2v = p.target === 'data2vec';
  if (p.target === 'simclr') return runSimclr(ctx, p, cfg, ps, train, val);
  // The head maps the student's tokens to what is regressed: a patch's pixels, or a teacher feature.
  defineLinear(ps, 'mim.head', cfg.dim, d2v ? cfg.dim : cfg.patchSize * cfg.patchSize * 3);
  // data2vec's teacher: the same encoder (no mask token), starting as a copy of the student, then its EMA.
  let teacher: ParamStore | undefined;
  if (d2v) {
    if (p.top_k > cfg.depth) throw new Error(`top_k ${p.top_k} exceeds the encoder's depth ${cfg.depth}: the target can average at most every block`);
    teacher = new ParamStore(deriveSeed(ctx.seed, 'init', 'train.image_encoder', 'teacher'));
    defineVit(teacher, 'image', cfg);
    initTeacher(teacher, ps);
  }
  const np = numPatches(cfg);
  const ratio = p.mask_ratio;
  const maskFor = (b: number, rng: Rng) => {
    const m = new Float32Array(b * np);
    const hide = Math.max(1, Math.round(ratio * np));
    for (let i = 0; i < b; i++) for (const j of rng.shuffle(Array.from({ length: np }, (_, k) => k)).slice(0, hide)) m[i * np + j] = 1;
    return tf.tensor2d(m, [b, np]);
  };
  // Loss on hidden patches only. `norm_pix` regresses per-patch normalised
  // pixels (MAE's choice for photographs); `pixels` the normalised image itself,
  // which keeps each patch's mean colour in the target: the synthetic world is
  // about colours, and norm_pix leaves an encoder that never had to see them.
  // `data2vec` regresses the EMA teacher's contextual features instead (src/ml/data2vec.ts).
  const normPix = p.target === 'norm_pix';
  const mimLoss = (images: tf.Tensor, mask: tf.Tensor) => {
    if (teacher) {
      const blocks: BlockOutput[] = [];
      vitForward(teacher, 'image', cfg, images, { blocks, finalNorm: false });
      const target = data2vecTargets(blocks, p.top_k);
      const pred = linear(ps, 'mim.head', vitForward(ps, 'image', cfg, images, { patchMask: mask }));
      return data2vecLoss(pred, target, mask, p.cls_weight);
    }
    const tokens = vitForward(ps, 'image', cfg, images, { patchMask: mask });
    const pred = linear(ps, 'mim.head', tokens.slice([0, 1, 0], [-1, -1, -1]));
    const target = patchify(images, cfg.patchSize);
    const tn = normPix ? layerNormPlain(target, 1e-6) : target;
    const err = tf.mean(tf.square(tf.sub(pred, tn)), 2);
    return tf.div(tf.sum(tf.mul(err, mask)), tf.sum(mask)) as tf.Scalar;
  };
  const batches = epochBatches(train.records.length, p.batch_size, ctx.seed);
  let valLoss = NaN;
  const { finalLoss } = await trainLoop({
    ctx,
    ps,
    ...scheduleParams(p),
    batchSize: p.batch_size,
    loss: (step) => {
      const idx = batches(step);
      const rng = new Rng(deriveSeed(ctx.seed, 'aug', step));
      const x = tf.tensor4d(imageBatch(train, idx, rng), [idx.length, cfg.imageSize, cfg.imageSize, 3]);
      return mimLoss(x, maskFor(idx.length, rng));
    },
    afterStep: (done) => {
      if (teacher) emaUpdate(teacher, ps, emaDecay(done - 1, p.steps, p.ema_start, p.ema_end));
    },
    evaluate: async (step) => {
      const rng = new Rng(deriveSeed(ctx.seed, 'val-mask'));
      const out = await inBatches(val.records.length, 64, (idx) =>
        mimLoss(tf.tensor4d(imageBatch(val, idx), [idx.length, cfg.imageSize, cfg.imageSize, 3]), maskFor(idx.length, rng)).reshape([1]),
      );
      valLoss = out.data.reduce((a, b) => a + b, 0) / out.data.length;
      ctx.metric('val_loss', valLoss, step);
    },
  });
  await saveCheckpoint(join(ctx.outDir, 'model'), ps, {
    model: 'vit',
    vit: cfg,
    trained_by: 'train.image_encoder',
    objective: d2v ? `data2vec (EMA teacher, top ${p.top_k} blocks)` : `masked image modelling (${p.target} target)`,
  });
  await writeMetrics(ctx, { loss: finalLoss, val_loss: valLoss, params: ps.count('image.') });
  ps.dispose();
  teacher?.dispose();
}

/**
 * `target = "simclr"`: SimCLR on unpaired images (src/ml/contrastive.ts). A
 * projection MLP (width -> width, GELU, -> proj_dim; SimCLR's head, dropped
 * after pretraining) maps the encoder's CLS output (after its final norm) of
 * each view; NT-Xent within the batch. Nothing is masked, so the encoder's
 * mask token stays as initialised.
 */
async function runSimclr(
  ctx: StageContext,
  p: TrainImageEncoderParams,
  cfg: VitConfig,
  ps: ParamStore,
  train: Awaited<ReturnType<typeof loadImageSplit>>,
  val: Awaited<ReturnType<typeof loadImageSplit>>,
): Promise<void> {
  const temperature = p.temperature ?? 0.2;
  const view = { scaleMin: p.view_scale_min ?? 0.8, flip: p.view_flip ?? false };
  const projDim = p.proj_dim ?? 64;
  defineLinear(ps, 'simclr.proj1', cfg.dim, cfg.dim);
  defineLinear(ps, 'simclr.proj2', cfg.dim, projDim);
  const project = (images: tf.Tensor) => {
    const cls = vitForward(ps, 'image', cfg, images).slice([0, 0, 0], [-1, 1, -1]).squeeze([1]);
    return linear(ps, 'simclr.proj2', gelu(linear(ps, 'simclr.proj1', cls)));
  };
  const s = cfg.imageSize;
  const views = (split: typeof train, idx: number[], rng: Rng) => {
    const z = project(tf.tensor4d(viewBatch(split, idx, rng, view), [2 * idx.length, s, s, 3]));
    return [z.slice([0, 0], [idx.length, -1]), z.slice([idx.length, 0], [idx.length, -1])] as const;
  };
  const batches = epochBatches(train.records.length, p.batch_size, ctx.seed);
  let valLoss = NaN,
    valAcc = NaN;
  const { finalLoss } = await trainLoop({
    ctx,
    ps,
    ...scheduleParams(p),
    batchSize: p.batch_size,
    loss: (step) => {
      const [z1, z2] = views(train, batches(step), new Rng(deriveSeed(ctx.seed, 'aug', step)));
      return ntXentLoss(z1, z2, temperature);
    },
    evaluate: async (step) => {
      // Fixed views of the val images, in batches of the training size (the loss depends on the batch size).
      const rng = new Rng(deriveSeed(ctx.seed, 'val-views'));
      let loss = 0,
        acc = 0,
        n = 0;
      for (let i = 0; i + 2 <= val.records.length; i += p.batch_size) {
        const idx = Array.from({ length: Math.min(p.batch_size, val.records.length - i) }, (_, k) => i + k);
        if (idx.length < 2) break;
        const [l, a] = tf.tidy(() => {
          const [z1, z2] = views(val, idx, rng);
          return [ntXentLoss(z1, z2, temperature).dataSync()[0]!, ntXentAccuracy(z1, z2)];
        });
        loss += l;
        acc += a;
        n++;
      }
      valLoss = loss / n;
      valAcc = acc / n;
      ctx.metric('val_loss', valLoss, step);
      ctx.metric('val_view_accuracy', valAcc, step);
    },
  });
  await saveCheckpoint(join(ctx.outDir, 'model'), ps, {
    model: 'vit',
    vit: cfg,
    trained_by: 'train.image_encoder',
    objective: `simclr (NT-Xent on the CLS's projection, temperature ${temperature}, crops ${view.scaleMin}-1${view.flip ? ', flips' : ''})`,
  });
  await writeMetrics(ctx, { loss: finalLoss, val_loss: valLoss, val_view_accuracy: valAcc * 100, params: ps.count('image.') });
  ps.dispose();
}

/** BERT's masking: 15% of real tokens; of those 80% [MASK], 10% random token, 10% unchanged. */
export function maskTokens(
  ids: number[],
  special: ReadonlySet<number>,
  vocab: number,
  maskId: number,
  rng: Rng,
  rate = 0.15,
): { input: number[]; targets: number[] } {
  const input = ids.slice();
  const targets = ids.map(() => -1);
  const candidates = ids.map((t, i) => (special.has(t) ? -1 : i)).filter((i) => i >= 0);
  for (const i of candidates) {
    if (!rng.chance(rate)) continue;
    targets[i] = ids[i]!;
    const r = rng.next();
    if (r < 0.8) input[i] = maskId;
    else if (r < 0.9) input[i] = special.size + rng.int(vocab - special.size);
  }
  // Every sequence predicts at least one token, so no batch is without a target.
  if (candidates.length && targets.every((t) => t < 0)) {
    const i = candidates[rng.int(candidates.length)]!;
    targets[i] = ids[i]!;
    input[i] = maskId;
  }
  return { input, targets };
}

export async function runMlm(ctx: StageContext, given: TrainMlmParams): Promise<void> {
  // The sentence objective's parameters have no schema defaults (./unimodal.ts): these are theirs.
  const p = {
    ...given,
    sentence_weight: given.sentence_weight ?? 0,
    sentence_objective: given.sentence_objective ?? 'infonce',
    decoder_mask_rate: given.decoder_mask_rate ?? 0.6,
    sentence_temperature: given.sentence_temperature ?? 0.05,
    sentence_mask_rate: given.sentence_mask_rate ?? 0.15,
    sentence_hard_negatives: given.sentence_hard_negatives ?? false,
    mlm_weight: given.mlm_weight ?? 1,
  };
  await setupBackend(ctx, p);
  const lines = (await readCorpus(p.corpus)).filter((l) => l.trim());
  const tok = WordPieceTokenizer.build(lines, p.vocab_size);
  ctx.log.info(`vocabulary: ${tok.size} WordPiece tokens from ${lines.length} lines`);
  const cfg: TextConfig = {
    vocabSize: tok.size,
    maxLen: p.max_len,
    dim: p.width,
    depth: p.depth,
    heads: p.heads,
    mlpRatio: p.mlp_ratio,
    eps: 1e-12,
  };
  const holdout = Math.min(256, Math.floor(lines.length / 10));
  const encoded = lines.map((l) => tok.encode(l, undefined, cfg.maxLen));
  const valEnc = encoded.slice(0, holdout),
    trainEnc = encoded.slice(holdout);
  const ps = new ParamStore(deriveSeed(ctx.seed, 'init', 'train.mlm'));
  defineText(ps, 'text', cfg);
  defineLinear(ps, 'mlm.transform', cfg.dim, cfg.dim);
  defineLayerNorm(ps, 'mlm.ln', cfg.dim);
  // Untied decoder: with a tied one, the softmax's push on every negative word
  // drifts the whole (narrow) embedding table along one direction, until all
  // words look alike after the embedding LayerNorm.
  defineLinear(ps, 'mlm.decoder', cfg.dim, cfg.vocabSize);
  const objective = p.sentence_weight > 0 ? p.sentence_objective : 'none';
  // A weight without a known objective would silently train MLM alone (as a schema older than this code did once).
  if (objective !== 'none' && objective !== 'infonce' && objective !== 'decoder')
    throw new Error(`train.mlm: unknown sentence_objective '${String(objective)}'`);
  if (objective === 'decoder') defineBlock(ps, 'retro.block', textBlockConfig(cfg));
  const special = tok.specialIds;
  const b = p.batch_size;
  const t = cfg.maxLen;
  // With the infonce sentence objective each row is masked twice (view 1 draws its masks first, as MLM alone does).
  const twoViews = objective === 'infonce';
  const mlmParts = (rows: { ids: number[]; mask: number[] }[], rng: Rng) => {
    const rate = twoViews ? p.sentence_mask_rate : undefined;
    const m = rows.map((r) => maskTokens(r.ids, special, tok.size, tok.maskId, rng, rate));
    if (twoViews) m.push(...rows.map((r) => maskTokens(r.ids, special, tok.size, tok.maskId, rng, rate)));
    const attn = twoViews ? [...rows, ...rows] : rows;
    const ids = tf.tensor2d(
      m.flatMap((x) => x.input),
      [m.length, t],
      'int32',
    );
    const mask = tf.tensor2d(
      attn.flatMap((r) => r.mask),
      [m.length, t],
      'int32',
    );
    const h = textForward(ps, 'text', cfg, { ids, mask });
    // The MLM head's mean negative log-likelihood of the targets (>= 0) at the rows of hidden states `hs`.
    let mlmLogits: tf.Tensor | undefined;
    const headNll = (hs: tf.Tensor, tgt: number[]) => {
      const logits = mlmHeadLogits(ps, 'mlm', hs, cfg.dim, cfg.eps);
      mlmLogits ??= logits;
      return maskedTokenNll(logits, tgt);
    };
    const mlm = headNll(
      h,
      m.flatMap((x) => x.targets),
    );
    if (objective === 'decoder') {
      // RetroMAE-style: a masked copy (its own draw, at decoder_mask_rate), embedded by the encoder's embeddings,
      // its first position replaced by the encoder's CLS output, through one new block; the MLM head predicts the
      // copy's masked tokens. Gradient reaches the encoder's blocks only through the CLS.
      const d = rows.map((r) => maskTokens(r.ids, special, tok.size, tok.maskId, rng, p.decoder_mask_rate));
      const dIds = tf.tensor2d(
        d.flatMap((x) => x.input),
        [rows.length, t],
        'int32',
      );
      const e = layerNorm(
        ps,
        'text.embln',
        tf.add(tf.add(embed(ps.get('text.word'), dIds), ps.get('text.pos').slice([0, 0], [t, cfg.dim])), ps.get('text.segment').slice([0, 0], [1, cfg.dim])),
        cfg.eps,
      );
      const x = tf.concat([h.slice([0, 0, 0], [-1, 1, -1]), e.slice([0, 1, 0], [-1, -1, -1])], 1);
      const hd = block(ps, 'retro.block', textBlockConfig(cfg), x, maskToBias(mask)).out;
      const sentence = headNll(
        hd,
        d.flatMap((x) => x.targets),
      );
      return { mlm, sentence, sentenceAcc: tf.scalar(NaN) };
    }
    if (!twoViews) return { mlm };
    // The CLS output of the last block (what S-SMKE's shared block reads for text) of each view.
    const cls = h.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]);
    const [c1, c2] = [cls.slice([0, 0], [rows.length, -1]), cls.slice([rows.length, 0], [rows.length, -1])];
    let hard: { neg: tf.Tensor; valid: boolean[] } | undefined;
    if (p.sentence_hard_negatives) {
      // View 1's masked positions, each swapped for a token drawn from the MLM head's softmax there (a constant: read
      // back, no gradient); where the draw is the original token nothing changes, and a row with no change has no
      // hard negative. Template words are predicted confidently and mostly kept; what the context leaves open
      // (a colour, a shape) is swapped for another plausible value.
      const n = rows.length;
      const probs = tf.softmax(mlmLogits!.slice([0, 0], [n * t, -1])).dataSync();
      const neg = rows.map((r) => r.ids.slice());
      const valid = rows.map(() => false);
      m.slice(0, n).forEach((x, i) =>
        x.targets.forEach((orig, j) => {
          if (orig < 0) return;
          let u = rng.next();
          let tokId = 0;
          const base = (i * t + j) * cfg.vocabSize;
          for (; tokId < cfg.vocabSize - 1; tokId++) if ((u -= probs[base + tokId]!) < 0) break;
          if (special.has(tokId) || tokId === orig) return;
          neg[i]![j] = tokId;
          valid[i] = true;
        }),
      );
      const hn = textForward(ps, 'text', cfg, {
        ids: tf.tensor2d(neg.flat(), [n, t], 'int32'),
        mask: tf.tensor2d(
          rows.flatMap((r) => r.mask),
          [n, t],
          'int32',
        ),
      });
      hard = { neg: hn.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]), valid };
    }
    const sentence = infoNceLoss(c1, c2, p.sentence_temperature, hard);
    const sentenceAcc = diagonalAccuracy(tf.matMul(l2normalize(c1), l2normalize(c2), false, true));
    return { mlm, sentence, sentenceAcc };
  };
  const mlmLoss = (rows: { ids: number[]; mask: number[] }[], rng: Rng) => {
    const r = mlmParts(rows, rng);
    if (!r.sentence) return r.mlm;
    return tf.add(tf.mul(r.mlm, p.mlm_weight), tf.mul(r.sentence, p.sentence_weight)) as tf.Scalar;
  };
  const batches = epochBatches(trainEnc.length, b, ctx.seed);
  let valLoss = NaN;
  let valSentence = NaN;
  let valSentenceAcc = NaN;
  const { finalLoss } = await trainLoop({
    ctx,
    ps,
    ...scheduleParams(p),
    batchSize: b,
    loss: (step) =>
      mlmLoss(
        batches(step).map((i) => trainEnc[i]!),
        new Rng(deriveSeed(ctx.seed, 'mask', step)),
      ),
    evaluate: async (step) => {
      const rng = new Rng(deriveSeed(ctx.seed, 'val-mask'));
      // val_loss stays the MLM loss alone (its perplexity is comparable with and without the sentence objective).
      const out = await inBatches(valEnc.length, 64, (idx) => {
        const r = mlmParts(
          idx.map((i) => valEnc[i]!),
          rng,
        );
        return r.sentence ? tf.stack([r.mlm, r.sentence, r.sentenceAcc]).reshape([1, 3]) : r.mlm.reshape([1]);
      });
      const col = (k: number) => {
        const xs = Array.from({ length: out.data.length / out.cols }, (_, i) => out.data[i * out.cols + k]!);
        return xs.reduce((a, c) => a + c, 0) / Math.max(1, xs.length);
      };
      valLoss = col(0);
      ctx.metric('val_loss', valLoss, step);
      if (objective !== 'none') {
        [valSentence, valSentenceAcc] = [col(1), col(2)];
        ctx.metric('val_sentence_loss', valSentence, step);
        if (objective === 'infonce') ctx.metric('val_sentence_accuracy', valSentenceAcc, step);
      }
    },
  });
  const dir = join(ctx.outDir, 'model');
  await mkdir(dir, { recursive: true });
  await saveCheckpoint(dir, ps, {
    model: 'text',
    text: cfg,
    trained_by: 'train.mlm',
    objective:
      objective === 'infonce'
        ? `masked language modelling (weight ${p.mlm_weight}) + two-view InfoNCE over the CLS (weight ${p.sentence_weight}, temperature ${p.sentence_temperature}, views masked at ${p.sentence_mask_rate}${p.sentence_hard_negatives ? ', MLM-sampled hard negatives' : ''})`
        : objective === 'decoder'
          ? `masked language modelling (weight ${p.mlm_weight}) + CLS-conditioned one-block decoder of a copy masked at ${p.decoder_mask_rate} (weight ${p.sentence_weight})`
          : 'masked language modelling',
  });
  await writeFile(join(dir, VOCAB_FILE), tok.toVocabText());
  await writeMetrics(ctx, {
    loss: finalLoss,
    val_loss: valLoss,
    val_perplexity: Math.exp(valLoss),
    ...(objective === 'infonce' ? { val_sentence_loss: valSentence, val_sentence_accuracy: valSentenceAcc * 100 } : {}),
    ...(objective === 'decoder' ? { val_sentence_loss: valSentence, val_decoder_perplexity: Math.exp(valSentence) } : {}),
    vocab_size: tok.size,
    params: ps.count('text.'),
  });
  ps.dispose();
}
