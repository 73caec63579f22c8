// `dataset.coco` and `dataset.flickr30k`: image-caption datasets with the
// Karpathy split (COCO 5k / Flickr30K 1k test images for retrieval).

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

export const KARPATHY_URL = 'https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip';
export const COCO_URLS = {
  train: 'http://images.cocodataset.org/zips/train2014.zip',
  val: 'http://images.cocodataset.org/zips/val2014.zip',
};
export const FLICKR_HELP =
  'Flickr30K images are distributed on request: fill in the form at https://shannon.cs.illinois.edu/DenotationGraph/ ' +
  '(or https://forms.illinois.edu/sec/229675), download flickr30k-images.tar.gz and place it';

const common = {
  karpathy_url: {
    type: 'string',
    pattern: '^(https?|file)://',
    default: KARPATHY_URL,
    description: 'caption_datasets.zip (Karpathy splits); SMKE_MIRROR applies.',
  },
  karpathy: { type: 'string', description: 'A local copy of caption_datasets.zip or of the split json, used instead of downloading.' },
  splits: {
    type: 'array',
    items: { enum: ['train', 'val', 'test'] },
    uniqueItems: true,
    minItems: 1,
    default: ['train', 'val', 'test'],
    description: 'Karpathy splits to convert (restval is part of train).',
  },
  image_size: {
    type: 'integer',
    minimum: 0,
    maximum: 2048,
    default: 0,
    description: 'Shorter side of stored images; 0 keeps the original JPEGs byte for byte.',
  },
  shard_size: { type: 'integer', minimum: 1, default: 1000, description: 'Images per tar shard.' },
} as const;

const outputs = () => ({
  out: { type: 'dir' as const, path: '.', description: 'The output directory' },
  pairs: { type: 'dir' as const, path: 'pairs', description: 'Image-text pairs with the Karpathy splits (train/val/test), 5 captions per image' },
  stats: { type: 'metrics' as const, path: 'stats.json', description: 'Images converted and dropped by reason' },
});

/** The local files among `keys` the stage was given (references to upstream outputs are digested through their key instead). */
const localInputs =
  <P>(keys: (keyof P)[]) =>
  (params: P) =>
    keys.map((k) => params[k]).filter((v): v is P[keyof P] & string => typeof v === 'string');

const cocoParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    train_url: { type: 'string', pattern: '^(https?|file)://', default: COCO_URLS.train },
    val_url: { type: 'string', pattern: '^(https?|file)://', default: COCO_URLS.val },
    train_zip: { type: 'string', description: 'A local train2014.zip, used instead of downloading.' },
    val_zip: { type: 'string', description: 'A local val2014.zip, used instead of downloading.' },
    ...common,
  },
} as const satisfies ObjectSchema;

export type CocoParams = ParamsOf<typeof cocoParams>;

export const cocoKind = defineKind({
  name: 'dataset.coco',
  version: KIND_VERSIONS['dataset.coco'],
  summary: 'COCO captions (train2014/val2014 zips + Karpathy split) as image-text pairs',
  params: cocoParams,
  outputs,
  resources: () => ({ cpus: 1, memBytes: 4 << 30 }),
  inputs: localInputs(['train_zip', 'val_zip', 'karpathy']),
  async run(ctx, params) {
    const { runCoco } = await import('./karpathy-run.js');
    await runCoco(ctx, params);
  },
});

const flickr30kParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    archive: {
      type: 'string',
      default: 'data/flickr30k/flickr30k-images.tar.gz',
      description: `flickr30k-images.tar.gz, project-relative or absolute. ${FLICKR_HELP} here.`,
    },
    ...common,
  },
} as const satisfies ObjectSchema;

export type Flickr30kParams = ParamsOf<typeof flickr30kParams>;

export const flickr30kKind = defineKind({
  name: 'dataset.flickr30k',
  version: KIND_VERSIONS['dataset.flickr30k'],
  summary: 'Flickr30K (user-placed flickr30k-images.tar.gz + Karpathy split) as image-text pairs',
  params: flickr30kParams,
  outputs,
  resources: () => ({ cpus: 1, memBytes: 2 << 30 }),
  inputs: localInputs(['archive', 'karpathy']),
  async run(ctx, params) {
    const { runFlickr } = await import('./karpathy-run.js');
    await runFlickr(ctx, params);
  },
});
