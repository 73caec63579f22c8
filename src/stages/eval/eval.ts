// Descriptors of eval.retrieval and eval.zeroshot (run in eval-run.ts). No tfjs
// at import time: the work is loaded inside run.
import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { path, BACKEND, DATA_MODE, METRICS_OUT } from '../ml/schema.js';
import { KIND_VERSIONS } from '../kind-versions.js';

/** Where the evaluated images come from: the embeddings are kept either way, the images only with 'memory'. */
const EVAL_DATA = {
  ...DATA_MODE,
  description:
    "'memory' decodes the split whole before embedding it (small sets: the mini profile); 'stream' reads the split's tar shards in order, decoding a few batches ahead, so memory holds the embeddings but never the images (the paper profile). Both give the same metrics.",
} as const;

const pairs = {
  oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
  description: 'Image-text datasets to evaluate on.',
} as const;

/** Prompt templates in the style of CLIP's 80 ImageNet ones (docs/method.md, "Metrics"); a pipeline may pass its own. */
export const DEFAULT_TEMPLATES = [
  'a photo of a {}.',
  'a picture of a {}.',
  'an image of a {}.',
  'a photo of the {}.',
  'a drawing of a {}.',
  'a {} on a background.',
] as const;

const evalRetrievalParams = {
  type: 'object',
  additionalProperties: false,
  required: ['model', 'pairs'],
  properties: {
    model: path('train.s_smke (or finetune.retrieval) checkpoint.'),
    pairs,
    split: { type: 'string', default: 'test' },
    data: EVAL_DATA,
    backend: BACKEND,
  },
} as const satisfies ObjectSchema;

export type EvalRetrievalParams = ParamsOf<typeof evalRetrievalParams>;

export const evalRetrieval = defineKind({
  name: 'eval.retrieval',
  version: KIND_VERSIONS['eval.retrieval'],
  summary: 'Zero-shot image-text retrieval of an S-SMKE checkpoint: TR@1/5/10 and IR@1/5/10 (x100)',
  params: evalRetrievalParams,
  outputs: () => METRICS_OUT,
  resources: () => ({ cpus: 1, memBytes: 2 * 1024 ** 3 }),
  async run(ctx, params) {
    const { runEvalRetrieval } = await import('./eval-run.js');
    await runEvalRetrieval(ctx, params);
  },
});

const evalZeroshotParams = {
  type: 'object',
  additionalProperties: false,
  required: ['model', 'images'],
  properties: {
    model: path('train.s_smke checkpoint.'),
    images: path('Image-class dataset with class names.'),
    split: { type: 'string', default: 'val' },
    templates: {
      type: 'array',
      items: { type: 'string', pattern: '\\{\\}' },
      minItems: 1,
      default: DEFAULT_TEMPLATES,
      description: "Prompt templates; '{}' is replaced by the class name.",
    },
    data: EVAL_DATA,
    backend: BACKEND,
  },
} as const satisfies ObjectSchema;

export type EvalZeroshotParams = ParamsOf<typeof evalZeroshotParams>;

export const evalZeroshot = defineKind({
  name: 'eval.zeroshot',
  version: KIND_VERSIONS['eval.zeroshot'],
  summary: 'Zero-shot classification of an S-SMKE checkpoint from class-name prompts averaged over templates (top-1/top-5, x100)',
  params: evalZeroshotParams,
  outputs: () => METRICS_OUT,
  resources: () => ({ cpus: 1, memBytes: 2 * 1024 ** 3 }),
  async run(ctx, params) {
    const { runEvalZeroshot } = await import('./eval-run.js');
    await runEvalZeroshot(ctx, params);
  },
});
