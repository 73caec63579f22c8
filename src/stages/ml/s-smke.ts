// Descriptor of train.s_smke (run in s-smke-run.ts). No tfjs at import time.

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { DATA_MODE, int, num, path, TRAIN_COMMON, TRAIN_RESOURCES } from './schema.js';
import { KIND_VERSIONS } from '../kind-versions.js';

const trainSmkeParams = {
  type: 'object',
  additionalProperties: false,
  required: ['pairs', 'teacher', 'image_encoder', 'text_encoder'],
  properties: {
    pairs: {
      oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
      description: 'Image-text datasets (train split for training, val_split of the first for validation).',
    },
    teacher: path('Frozen image teacher checkpoint (train.teacher model).'),
    image_encoder: path('Pretrained image encoder checkpoint (train.image_encoder model).'),
    text_encoder: path('Pretrained text encoder checkpoint with vocab.txt (train.mlm model).'),
    layers: int(2, 1, 'Encoder layers kept from each pretrained encoder (6 in the paper).'),
    shared_heads: int(4, 1),
    shared_mlp_ratio: int(4, 1),
    bank_size: int(1024, 0, 'Memory bank of past teacher targets (65536 in the paper); 0 = in-batch KD without a bank (the ablation).'),
    init: {
      type: 'string',
      enum: ['pretrained', 'random'],
      default: 'pretrained',
      description:
        "'pretrained' copies the unimodal encoders' blocks (the method); 'random' keeps their shapes and vocabulary but starts from random weights (the ablation).",
    },
    data: DATA_MODE,
    accum_steps: int(
      1,
      1,
      'Micro-batches of batch_size accumulated per optimiser step; with N GPUs a multiple of N (each GPU computes accum_steps/N of them, gradients averaged).',
    ),
    weight_decay: num(0.01),
    val_split: { type: 'string', default: 'val' },
    val_every: int(50, 1, 'Validate (in-batch KD, loss and accuracies) every this many steps.'),
    val_batches: int(2, 1),
    checkpoint_every: int(50, 1, 'Write a resume checkpoint to the scratch directory every this many steps.'),
    ...TRAIN_COMMON,
    steps: int(300),
    lr: num(2e-3, 0, 'Peak learning rate; the mini default. The paper uses 1e-4 x global_batch/256.'),
  },
} as const satisfies ObjectSchema;

export type TrainSmkeParams = ParamsOf<typeof trainSmkeParams>;

export const trainSmke = defineKind({
  name: 'train.s_smke',
  // 4: token embeddings by gather (its gradient sums in another order than the one-hot product's).
  version: KIND_VERSIONS['train.s_smke'],
  summary: 'S-SMKE pretraining: truncated pretrained encoders + shared block, contrastive KD with a memory bank + ITC; resumable',
  params: trainSmkeParams,
  outputs() {
    return {
      checkpoint: { type: 'dir', path: 'model', description: 'S-SMKE checkpoint: model.safetensors + config.json + vocab.txt' },
      metrics: { type: 'metrics', path: 'metrics.json', description: 'Final training and validation metrics' },
    };
  },
  resources: () => TRAIN_RESOURCES,
  async run(ctx, params) {
    const { runSmke } = await import('./s-smke-run.js');
    await runSmke(ctx, params);
  },
});
