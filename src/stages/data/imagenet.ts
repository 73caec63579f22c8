// `dataset.imagenet`: ImageNet-1k from the Hugging Face hub (gated: the token
// in HF_TOKEN must belong to an account that accepted the terms). The token
// is sent only in the Authorization header: never logged, never in the key,
// the manifest or an error message.

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

export const IMAGENET_TERMS = 'https://huggingface.co/datasets/ILSVRC/imagenet-1k';

const imagenetParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    repo: { type: 'string', default: 'ILSVRC/imagenet-1k', description: 'HF dataset repository.' },
    revision: { type: 'string', default: 'main', description: 'Branch, tag or commit of the repository (a commit makes the result reproducible).' },
    splits: {
      type: 'array',
      items: { enum: ['train', 'val'] },
      uniqueItems: true,
      minItems: 1,
      default: ['val'],
      description: 'val (50k, zero-shot) and/or train (1.28M, finetuning).',
    },
    train_shards: { type: 'integer', minimum: 1, default: 5, description: 'Number of data/train_images_<i>.tar.gz files in the repository.' },
    image_size: { type: 'integer', minimum: 0, maximum: 2048, default: 0, description: 'Shorter side of stored images; 0 keeps the original JPEGs.' },
    shard_size: { type: 'integer', minimum: 1, default: 1000 },
  },
} as const satisfies ObjectSchema;

export type ImagenetParams = ParamsOf<typeof imagenetParams>;

export const imagenetKind = defineKind({
  name: 'dataset.imagenet',
  version: KIND_VERSIONS['dataset.imagenet'],
  summary: 'ImageNet-1k from the HF hub (HF_TOKEN, HF_ENDPOINT) as an image classification dataset with class names',
  params: imagenetParams,
  outputs() {
    return {
      images: { type: 'dir', path: 'images', description: 'Image classification dataset (train/val)' },
      classes: { type: 'file', path: 'images/classes.json', description: 'Class names by label (the first synonym)' },
      synsets: { type: 'file', path: 'synsets.json', description: 'WordNet ids and full names by label' },
      stats: { type: 'metrics', path: 'stats.json', description: 'Images per split, dropped by reason' },
    };
  },
  resources: () => ({ cpus: 2, memBytes: 4 << 30 }),
  // HF_TOKEN is deliberately absent: a secret must not reach the key. HF_ENDPOINT only says where the same files come from.
  env: () => [],
  // Stages get only an allow-list of smke's environment: these two are read at run time, so ask for them.
  passEnv: () => ['HF_TOKEN', 'HF_ENDPOINT'],
  async run(ctx, params) {
    const { runImagenet } = await import('./imagenet-run.js');
    await runImagenet(ctx, params);
  },
});
