// Descriptors of the finetuning kinds (run in finetune-run.ts). No tfjs at import time.

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { DATA_MODE, int, num, path, METRICS_OUT, MODEL_OUT, TRAIN_COMMON, TRAIN_RESOURCES } from './schema.js';
import { KIND_VERSIONS } from '../kind-versions.js';

const finetuneTextParams = {
  type: 'object',
  additionalProperties: false,
  required: ['model', 'tasks', 'task'],
  properties: {
    model: path('Checkpoint with vocab.txt: train.s_smke checkpoint or train.mlm model.'),
    tasks: path('Text-tasks dataset (data.synthetic tasks output, or GLUE).'),
    task: { type: 'string', minLength: 1, description: 'Task name: cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli.' },
    max_len: int(0, 0, "Token limit; 0 uses the model's."),
    data: {
      ...DATA_MODE,
      description:
        "'memory' reads the task's train and eval splits whole; 'stream' keeps only each example's offset in the JSON-lines file and reads a step's batch (and the eval split, in order) when needed. Same batches, same results.",
    },
    eval_every: int(100),
    ...TRAIN_COMMON,
    // 100 steps left CoLA and QQP at the majority class in bench/ml-mini; 150 learn them.
    steps: int(150),
    lr: num(1e-3),
    // Task-adaptive pretraining before the head trains. No schema defaults, so that existing stages' keys
    // are unchanged: off (0 steps) when not given; adapt_lr defaults to lr, adapt_mask_rate to 0.15.
    adapt_steps: {
      type: 'integer',
      minimum: 0,
      description: "Steps of masked language modelling on the task's training inputs (as pairs, labels unused) before the classifier trains; 0 (default) none.",
    },
    adapt_lr: { type: 'number', exclusiveMinimum: 0, description: 'Peak learning rate of the adaptation; default lr.' },
    adapt_mask_rate: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'Share of real tokens masked in the adaptation; default 0.15.' },
    adapt_objective: {
      type: 'string',
      enum: ['mlm', 'electra', 'pair_rtd'],
      description:
        "The adaptation's objective: 'mlm' (default) masked language modelling; 'electra' that plus replaced-token detection of the MLM head's draws; 'pair_rtd' replaced-token detection of words the MLM head draws reading only the replaced token's side.",
    },
    adapt_pair_weight: {
      type: 'number',
      minimum: 0,
      description:
        "With adapt_objective 'pair_rtd': weight of a pair-level head on the first token telling replaced pairs from intact ones (half are left intact); default 0, none.",
    },
    adapt_rtd_weight: {
      type: 'number',
      minimum: 0,
      description: "Weight of the replaced-token detection loss with adapt_objective 'electra' or 'pair_rtd'; default 50.",
    },
  },
} as const satisfies ObjectSchema;

export type FinetuneTextParams = ParamsOf<typeof finetuneTextParams>;

export const finetuneText = defineKind({
  name: 'finetune.text',
  // 4: token embeddings by gather (its gradient sums in another order than the one-hot product's).
  version: KIND_VERSIONS['finetune.text'],
  summary: "Finetune a text model (S-SMKE or train.mlm) on one GLUE-format task; reports the task's metrics",
  params: finetuneTextParams,
  outputs: () => METRICS_OUT,
  resources: () => TRAIN_RESOURCES,
  async run(ctx, params) {
    const { runFinetuneText } = await import('./finetune-run.js');
    await runFinetuneText(ctx, params);
  },
});

const finetuneImageParams = {
  type: 'object',
  additionalProperties: false,
  required: ['model', 'images'],
  properties: {
    model: path('Checkpoint with an image encoder (train.s_smke checkpoint, or a vit model).'),
    images: path('Image-class dataset.'),
    mode: { type: 'string', enum: ['linear', 'full'], default: 'linear' },
    // No schema default, so that adding it left existing stages' keys unchanged: 'mean' when not given.
    pool: {
      type: 'string',
      enum: ['mean', 'cls'],
      description: "What the head reads: 'mean' the mean of the patch tokens (default), 'cls' the CLS token's output (what S-SMKE's shared block starts from).",
    },
    val_split: { type: 'string', default: 'val' },
    data: DATA_MODE,
    weight_decay: num(0.01),
    eval_every: int(100),
    ...TRAIN_COMMON,
    steps: int(150),
    lr: num(0, 0, "Peak learning rate; 0 picks the mode's: 1e-2 for a linear probe, 2e-3 for a full finetune."),
  },
} as const satisfies ObjectSchema;

export type FinetuneImageParams = ParamsOf<typeof finetuneImageParams>;

export const finetuneImage = defineKind({
  name: 'finetune.image',
  version: KIND_VERSIONS['finetune.image'],
  summary: 'Linear probe or full finetune of an image encoder on mean-pooled patch tokens -> LN -> linear',
  params: finetuneImageParams,
  outputs: () => METRICS_OUT,
  resources: () => TRAIN_RESOURCES,
  async run(ctx, params) {
    const { runFinetuneImage } = await import('./finetune-run.js');
    await runFinetuneImage(ctx, params);
  },
});

const finetuneRetrievalParams = {
  type: 'object',
  additionalProperties: false,
  required: ['model', 'pairs'],
  properties: {
    model: path('train.s_smke checkpoint.'),
    pairs: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }], description: 'Image-text datasets (train split).' },
    data: DATA_MODE,
    ...TRAIN_COMMON,
    steps: int(150),
    lr: num(2e-4),
  },
} as const satisfies ObjectSchema;

export type FinetuneRetrievalParams = ParamsOf<typeof finetuneRetrievalParams>;

export const finetuneRetrieval = defineKind({
  name: 'finetune.retrieval',
  // 4: token embeddings by gather (its gradient sums in another order than the one-hot product's).
  version: KIND_VERSIONS['finetune.retrieval'],
  summary: 'Finetune S-SMKE for retrieval with the CLIP loss on x',
  params: finetuneRetrievalParams,
  outputs: () => ({ ...MODEL_OUT, checkpoint: MODEL_OUT.model! }),
  resources: () => TRAIN_RESOURCES,
  async run(ctx, params) {
    const { runFinetuneRetrieval } = await import('./finetune-run.js');
    await runFinetuneRetrieval(ctx, params);
  },
});
