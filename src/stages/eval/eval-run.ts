// Zero-shot evaluation of an S-SMKE checkpoint, as the method defines it
// (docs/method.md, "Metrics"):
// - eval.retrieval: every image and every caption embedded once (x), cosine
//   scores, TR@k / IR@k with several captions per image, x100;
// - eval.zeroshot: per class, the mean of the normalised text embeddings of
//   its name in every prompt template, renormalised; top-1/top-5 accuracy.

import * as tf from '@tensorflow/tfjs';
import type { StageContext } from '../stage-kind.js';
import { loadModel, loadTokenizer } from '../../ml/models.js';
import type { SmkeConfig } from '../../ml/smke.js';
import { l2normalize } from '../../ml/layers.js';
import { retrievalRecall, topkAccuracy } from '../../ml/metrics.js';
import { dirList, setupBackend, writeMetrics } from '../ml/common.js';
import { imageBatch, loadImageSplit } from '../ml/images.js';
import { readDescriptor, type ImageDescriptor } from '../../data/dataset-format.js';
import { imageEmbedding, textEmbedding, type Loaded } from '../ml/encoders.js';
import { concatFloats, inBatches } from '../ml/loop.js';
import { textTensors } from '../ml/pairs.js';
import { streamEvaluate } from '../ml/streaming.js';
import type { EvalRetrievalParams, EvalZeroshotParams } from './eval.js';

type P = EvalRetrievalParams | EvalZeroshotParams;

/**
 * Fails on the first embedding row with a NaN or infinite entry, naming it:
 * non-finite scores would rank silently (and a NaN never means a hit), so a
 * checkpoint that produces them cannot be evaluated.
 */
function checkEmbeddings(ctx: StageContext, p: P, e: { data: Float32Array; cols: number }, row: (i: number) => string): void {
  for (let k = 0; k < e.data.length; k++) {
    if (Number.isFinite(e.data[k]!)) continue;
    const i = Math.floor(k / e.cols);
    throw new Error(
      `${ctx.stage}: the embedding of ${row(i)} has ${e.data[k]} in dimension ${k % e.cols}: the checkpoint ${p.model} produces non-finite outputs (a diverged run? retrain it with a lower learning rate)`,
    );
  }
}

async function loadSmke(ctx: StageContext, p: P): Promise<{ m: Loaded; cfg: SmkeConfig }> {
  await setupBackend(ctx, p);
  const m = await loadModel(p.model, ctx.seed);
  if (m.config.model !== 's_smke') throw new Error(`${ctx.stage}: an S-SMKE checkpoint is needed, got '${m.config.model}'`);
  return { m, cfg: m.config.smke };
}

/** Image embeddings of a split with each image's id and captions or label: streamed from the shards, or decoded whole. */
interface EmbeddedImages {
  emb: { data: Float32Array; cols: number };
  ids: string[];
  captions: string[][];
  labels: number[];
}

/**
 * `data = "stream"` reads the split's tar shards in index order, decoding a few batches ahead:
 * memory holds the embeddings, never the images (ImageNet's 50,000 val images are 7.5 GB as
 * 224 px bytes). `"memory"` decodes the split whole first (small sets). Both give the same rows.
 */
async function embedImages(ctx: StageContext, p: P, m: Loaded, dirs: string[], size: number): Promise<EmbeddedImages> {
  const embed = (x: Float32Array, n: number) => imageEmbedding(m, tf.tensor4d(x, [n, size, size, 3]));
  const split = p.split;
  if (p.data === 'stream') {
    const ev = await streamEvaluate(dirs, split, size, 64, embed, ctx.signal);
    return { emb: ev, ids: ev.ids, captions: ev.captions, labels: ev.labels };
  }
  const out: EmbeddedImages = { emb: { data: new Float32Array(0), cols: 0 }, ids: [], captions: [], labels: [] };
  const parts: Float32Array[] = [];
  for (const dir of dirs) {
    // One dataset decoded at a time: its pixels are freed before the next is read.
    const set = await loadImageSplit(dir, split, size, { signal: ctx.signal });
    const e = await inBatches(set.records.length, 64, (idx) => embed(imageBatch(set, idx), idx.length));
    parts.push(e.data);
    out.emb.cols = e.cols || out.emb.cols;
    for (const r of set.records) {
      out.ids.push(r.id);
      out.captions.push(r.captions ?? []);
      out.labels.push(r.label ?? -1);
    }
  }
  out.emb.data = concatFloats(parts);
  return out;
}

export async function runEvalRetrieval(ctx: StageContext, p: EvalRetrievalParams): Promise<void> {
  const { m, cfg } = await loadSmke(ctx, p);
  const tok = await loadTokenizer(p.model);
  const s = cfg.image.imageSize;
  const images = await embedImages(ctx, p, m, dirList(p.pairs), s);
  const nImages = images.ids.length;
  const img = images.emb;
  const texts = images.captions.map((cs, i) => {
    if (!cs.length) throw new Error(`image ${images.ids[i]} has no captions: an image-text dataset is needed`);
    return cs;
  });
  const caps = texts.flat().map((c) => tok.encode(c, undefined, cfg.text.maxLen));
  const captionImage = texts.flatMap((cs, i) => cs.map(() => i));
  const txt = await inBatches(caps.length, 64, (idx) => textEmbedding(m, textTensors(idx.map((i) => caps[i]!))));
  const source = `input pairs (${dirList(p.pairs).join(', ')}, split ${p.split})`;
  checkEmbeddings(ctx, p, img, (i) => `image ${i} ('${images.ids[i]}') of ${source}`);
  const flatTexts = texts.flat();
  checkEmbeddings(ctx, p, txt, (j) => `caption ${j} ("${flatTexts[j]}", of image '${images.ids[captionImage[j]!]}') of ${source}`);
  const sim = tf.tidy(
    () => tf.matMul(tf.tensor2d(img.data, [nImages, img.cols]), tf.tensor2d(txt.data, [caps.length, txt.cols]), false, true).dataSync() as Float32Array,
  );
  const r = retrievalRecall(sim, nImages, captionImage, [1, 5, 10]);
  const metrics: Record<string, number> = { images: nImages, captions: caps.length };
  for (const k of [1, 5, 10]) {
    metrics[`tr${k}`] = r.tr[k]! * 100;
    metrics[`ir${k}`] = r.ir[k]! * 100;
  }
  metrics.r1_mean = (metrics.tr1! + metrics.ir1!) / 2;
  ctx.log.info(
    `TR@1/5/10 ${[1, 5, 10].map((k) => metrics[`tr${k}`]!.toFixed(2)).join('/')} | IR@1/5/10 ${[1, 5, 10].map((k) => metrics[`ir${k}`]!.toFixed(2)).join('/')}`,
  );
  await writeMetrics(ctx, metrics);
  m.ps.dispose();
}

export async function runEvalZeroshot(ctx: StageContext, p: EvalZeroshotParams): Promise<void> {
  const { m, cfg } = await loadSmke(ctx, p);
  const tok = await loadTokenizer(p.model);
  const classes = (await readDescriptor<ImageDescriptor>(p.images, ['image-class'])).classes ?? [];
  if (classes.length < 2) throw new Error(`${p.images} is not an image-class dataset with named classes`);
  const templates = p.templates;
  // Class vectors: mean over templates of normalised text embeddings, renormalised.
  const prompts = classes.flatMap((c) => templates.map((t) => tok.encode(t.replaceAll('{}', c), undefined, cfg.text.maxLen)));
  const txt = await inBatches(prompts.length, 64, (idx) => textEmbedding(m, textTensors(idx.map((i) => prompts[i]!))));
  const images = await embedImages(ctx, p, m, [p.images], cfg.image.imageSize);
  const unlabelled = images.labels.findIndex((l) => l < 0);
  if (unlabelled >= 0)
    throw new Error(
      `${ctx.stage}: image '${images.ids[unlabelled]}' of ${p.images} (split ${p.split}) has no class label: zero-shot accuracy needs a labelled split`,
    );
  const nImages = images.ids.length;
  const img = images.emb;
  const nT = templates.length;
  checkEmbeddings(
    ctx,
    p,
    txt,
    (i) => `prompt ${i} ("${templates[i % nT]!.replaceAll('{}', classes[Math.floor(i / nT)]!)}", class '${classes[Math.floor(i / nT)]}') of input templates`,
  );
  checkEmbeddings(ctx, p, img, (i) => `image ${i} ('${images.ids[i]}') of input images (${p.images}, split ${p.split})`);
  const scores = tf.tidy(() => {
    const classVec = l2normalize(tf.tensor3d(txt.data, [classes.length, nT, txt.cols]).mean(1));
    return tf.matMul(tf.tensor2d(img.data, [nImages, img.cols]), classVec, false, true).dataSync() as Float32Array;
  });
  // Ties count against the model, as in retrieval: a constant model scores top-1 = 0, not 100.
  const acc = topkAccuracy(scores, nImages, classes.length, images.labels, [1, 5]);
  await writeMetrics(ctx, { top1: acc[1]! * 100, top5: acc[5]! * 100, images: nImages, classes: classes.length, templates: templates.length });
  m.ps.dispose();
}
