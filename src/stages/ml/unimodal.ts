// Descriptors of the mini profile's unimodal pretraining kinds (see
// unimodal-run.ts for what each trains and why). No tfjs at import time.

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { int, num, path, MODEL_OUT, TRAIN_COMMON, TRAIN_RESOURCES, VIT_ARCH } from './schema.js';
import { KIND_VERSIONS } from '../kind-versions.js';

const trainTeacherParams = {
  type: 'object',
  additionalProperties: false,
  required: ['images'],
  properties: {
    images: path('Image-class dataset (data.synthetic images output).'),
    val_split: { type: 'string', default: 'val' },
    eval_every: int(100),
    ...VIT_ARCH,
    ...TRAIN_COMMON,
    steps: int(300),
    lr: num(2e-3),
  },
} as const satisfies ObjectSchema;

export type TrainTeacherParams = ParamsOf<typeof trainTeacherParams>;

export const trainTeacher = defineKind({
  name: 'train.teacher',
  version: KIND_VERSIONS['train.teacher'],
  summary: 'Train a ViT teacher supervised on a named-class image set (the mini stand-in for BEiTv2)',
  params: trainTeacherParams,
  outputs: () => MODEL_OUT,
  resources: () => TRAIN_RESOURCES,
  async run(ctx, params) {
    const { runTeacher } = await import('./unimodal-run.js');
    await runTeacher(ctx, params);
  },
});

const trainImageEncoderParams = {
  type: 'object',
  additionalProperties: false,
  required: ['images'],
  properties: {
    images: path('Image dataset whose train split is used without labels (e.g. the pairs).'),
    val_split: { type: 'string', default: 'val' },
    mask_ratio: { type: 'number', minimum: 0.05, maximum: 0.95, default: 0.4 },
    target: {
      type: 'string',
      enum: ['norm_pix', 'pixels', 'data2vec', 'simclr'],
      default: 'norm_pix',
      description:
        "What hidden patches regress: 'norm_pix' per-patch normalised pixels (MAE), 'pixels' the normalised image (keeps colour), 'data2vec' the features of an EMA teacher that sees the whole image (its top_k blocks' MLP outputs, instance-normalised, averaged, layer-normalised), the CLS regressing their mean. 'simclr' masks nothing: two crops of each image (no colour jitter), an MLP projection of the CLS, and SimCLR's NT-Xent loss within the batch.",
    },
    // simclr's settings have no schema default, so that adding them left the keys of existing stages unchanged; the defaults are in unimodal-run.ts.
    temperature: { type: 'number', exclusiveMinimum: 0, description: 'simclr: the softmax temperature of the cosine similarities (default 0.2).' },
    view_scale_min: {
      type: 'number',
      minimum: 0.05,
      maximum: 1,
      description: "simclr: smallest crop of a view, as a share of the image's area (default 0.8: smaller crops cut objects out of the 32 px scenes).",
    },
    view_flip: { type: 'boolean', description: 'simclr: flip views horizontally half the time (default false: left/right is a caption attribute).' },
    proj_dim: { type: 'integer', minimum: 2, description: "simclr: output width of the CLS's projection MLP (default 64)." },
    top_k: int(2, 1, "data2vec: how many of the teacher's last blocks the target averages (at most depth)."),
    ema_start: { type: 'number', minimum: 0, maximum: 1, default: 0.99, description: "data2vec: the teacher's EMA decay at the first update." },
    ema_end: { type: 'number', minimum: 0, maximum: 1, default: 0.999, description: 'data2vec: the EMA decay at the last update (linear in between).' },
    cls_weight: num(1, 0, "data2vec: weight of the CLS token's regression of the image's mean teacher feature (0: patches only)."),
    eval_every: int(100),
    ...VIT_ARCH,
    ...TRAIN_COMMON,
    steps: int(300),
    lr: num(2e-3),
  },
} as const satisfies ObjectSchema;

export type TrainImageEncoderParams = ParamsOf<typeof trainImageEncoderParams>;

export const trainImageEncoder = defineKind({
  name: 'train.image_encoder',
  version: KIND_VERSIONS['train.image_encoder'],
  summary: "Pretrain a ViT by masked image modelling of pixels or of an EMA teacher's features (data2vec): the mini stand-in for Data2Vec2",
  params: trainImageEncoderParams,
  outputs: () => MODEL_OUT,
  resources: () => TRAIN_RESOURCES,
  async run(ctx, params) {
    const { runImageEncoder } = await import('./unimodal-run.js');
    await runImageEncoder(ctx, params);
  },
});

const trainMlmParams = {
  type: 'object',
  additionalProperties: false,
  required: ['corpus'],
  properties: {
    corpus: path('Text corpus dataset (data.synthetic corpus output).'),
    vocab_size: int(1000, 16),
    max_len: int(32, 4),
    width: int(48, 8),
    depth: int(2, 1),
    heads: int(4, 1),
    mlp_ratio: int(2, 1),
    eval_every: int(100),
    // A sentence-level objective beside MLM (unsupervised SimCSE-style; off at 0): each sentence is masked twice
    // independently, both views go through the encoder, and an InfoNCE loss over their CLS vectors (the other
    // sentences of the batch as negatives) trains the CLS that S-SMKE's shared block starts from, which MLM
    // alone never trains. The MLM loss is then the mean over both views' masked tokens.
    // `decoder` instead (RetroMAE-style): a one-block decoder reconstructs a heavily masked copy of the sentence
    // from the encoder's CLS in place of its own first token, so the CLS must carry what the visible words do not
    // predict (in the synthetic world: the colours and shapes), the MLM head shared.
    // No schema defaults (the code's apply): a default would enter every train.mlm key and rerun
    // today's text encoders for nothing (sentence_weight 0 trains exactly the MLM of before).
    sentence_weight: { type: 'number', minimum: 0, description: 'Weight of the sentence objective over the CLS (default 0: MLM only, as before).' },
    sentence_objective: {
      type: 'string',
      enum: ['infonce', 'decoder'],
      description: 'infonce (the default): two masked views, InfoNCE over their CLS; decoder: CLS-conditioned reconstruction of a masked copy.',
    },
    decoder_mask_rate: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      description: "Share of tokens masked in the decoder's copy (default 0.6; RetroMAE: 0.5-0.7).",
    },
    sentence_temperature: { type: 'number', exclusiveMinimum: 0, description: "InfoNCE temperature (default SimCSE's 0.05)." },
    sentence_mask_rate: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      description: "Share of tokens masked in each view of the infonce objective (default BERT's 0.15; MLM predicts the masked ones).",
    },
    sentence_hard_negatives: {
      type: 'boolean',
      description:
        "infonce (default false): each sentence also gets a hard negative, itself with view 1's masked tokens swapped for the MLM head's samples (where they differ): sentences that differ in what the context does not predict.",
    },
    mlm_weight: { type: 'number', minimum: 0, description: 'Weight of the MLM loss (default 1; 0 with sentence_weight > 0: the sentence objective alone).' },
    ...TRAIN_COMMON,
    steps: int(300),
    lr: num(2e-3),
  },
} as const satisfies ObjectSchema;

export type TrainMlmParams = ParamsOf<typeof trainMlmParams>;

export const trainMlm = defineKind({
  name: 'train.mlm',
  // 4: token embeddings by gather (its gradient sums in another order than the one-hot product's).
  version: KIND_VERSIONS['train.mlm'],
  summary: 'Pretrain a BERT-style text encoder by masked language modelling, with a WordPiece vocabulary built from the corpus',
  params: trainMlmParams,
  outputs: () => ({ ...MODEL_OUT, model: { type: 'dir', path: 'model', description: 'Checkpoint: model.safetensors + config.json + vocab.txt' } }),
  resources: () => TRAIN_RESOURCES,
  async run(ctx, params) {
    const { runMlm } = await import('./unimodal-run.js');
    await runMlm(ctx, params);
  },
});
