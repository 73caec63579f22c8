// Every shipped stage kind's version, in one table. A kind's version says
// what its results mean: bump it here when a kind's code changes what it
// produces, and every cached result of that kind stops matching. Each kind
// reads its own version from this table, so the plan cache (and with it the
// no-op fast path) can check a cached plan's versions without loading a
// single kind (src/runtime/load-plan.ts).

export const KIND_VERSIONS = {
  'data.synthetic': 5,
  'dataset.cc12m': 1,
  'dataset.cc3m': 1,
  'dataset.cifar': 1,
  'dataset.coco': 1,
  'dataset.flickr30k': 1,
  'dataset.glue': 1,
  'dataset.imagenet': 1,
  download: 1,
  'eval.retrieval': 2,
  'eval.zeroshot': 2,
  exec: 1,
  'finetune.image': 3,
  'finetune.retrieval': 4,
  'finetune.text': 4,
  'report.paper': 1,
  'train.image_encoder': 4,
  'train.mlm': 4,
  'train.s_smke': 4,
  'train.teacher': 3,
  'weights.convert': 1,
  'weights.file': 1,
} as const satisfies Record<string, number>;
