// The eval stage kinds, registered in ../registry.ts. Descriptors only: the
// work (and tfjs) is loaded inside run.
import { defineKind, type AnyStageKind, type ObjectSchema, type ParamsOf } from '../kind.js';
import { path, BACKEND, METRICS_OUT } from '../ml/schema.js';

const pairs = {
  oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
  description: 'Image-text datasets to evaluate on.',
} as const;

/** Prompt templates in the style of CLIP's 80 ImageNet ones (s-smke.md); a pipeline may pass its own. */
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
    backend: BACKEND,
  },
} as const satisfies ObjectSchema;

export type EvalRetrievalParams = ParamsOf<typeof evalRetrievalParams>;

export const evalRetrieval = defineKind({
  name: 'eval.retrieval',
  version: 2,
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
    backend: BACKEND,
  },
} as const satisfies ObjectSchema;

export type EvalZeroshotParams = ParamsOf<typeof evalZeroshotParams>;

export const evalZeroshot = defineKind({
  name: 'eval.zeroshot',
  version: 2,
  summary: 'Zero-shot classification of an S-SMKE checkpoint from class-name prompts averaged over templates (top-1/top-5, x100)',
  params: evalZeroshotParams,
  outputs: () => METRICS_OUT,
  resources: () => ({ cpus: 1, memBytes: 2 * 1024 ** 3 }),
  async run(ctx, params) {
    const { runEvalZeroshot } = await import('./eval-run.js');
    await runEvalZeroshot(ctx, params);
  },
});

export const kinds: AnyStageKind[] = [evalZeroshot, evalRetrieval];
