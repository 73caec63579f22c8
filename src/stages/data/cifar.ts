// `dataset.cifar`: CIFAR-10 or CIFAR-100 from the binary distribution, as an
// image classification dataset (32x32 PNGs, train/test, class names).

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

export const CIFAR_URLS = {
  cifar10: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
  cifar100: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
};

const cifarParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    variant: { enum: ['cifar10', 'cifar100'], default: 'cifar10' },
    url: { type: 'string', pattern: '^(https?|file)://', description: 'Archive URL (default: the official one for the variant); SMKE_MIRROR applies.' },
    md5: { type: 'string', pattern: '^[0-9a-fA-F]{32}$', description: 'Expected md5 of the archive.' },
    label: { enum: ['fine', 'coarse'], default: 'fine', description: 'CIFAR-100 only: the 100 fine or the 20 coarse classes.' },
    shard_size: { type: 'integer', minimum: 1, default: 5000 },
  },
} as const satisfies ObjectSchema;

export type CifarParams = ParamsOf<typeof cifarParams>;

export const cifarKind = defineKind({
  name: 'dataset.cifar',
  version: KIND_VERSIONS['dataset.cifar'],
  summary: 'CIFAR-10 / CIFAR-100 (binary distribution) as an image classification dataset',
  params: cifarParams,
  outputs() {
    return {
      images: { type: 'dir', path: 'images', description: 'Image classification dataset (train/test)' },
      classes: { type: 'file', path: 'images/classes.json', description: 'Class names by label' },
    };
  },
  resources: () => ({ cpus: 1, memBytes: 2 << 30 }),
  async run(ctx, params) {
    const { runCifar } = await import('./cifar-run.js');
    await runCifar(ctx, params);
  },
});
