// One stage kind by name, loading only the module that defines it. A pooled
// worker needs only the kinds of the jobs it is given (usually exec alone);
// the registry (./registry.ts) loads every kind's module, ~40 ms before a
// fresh worker could take its first job. test/stages/kind-loader.test.ts
// holds this table to the registry, kind for kind.

import type { KIND_VERSIONS } from './kind-versions.js';
import type { AnyStageKind } from './stage-kind.js';

const LOADERS: Record<keyof typeof KIND_VERSIONS, () => Promise<AnyStageKind>> = {
  exec: async () => (await import('./exec/exec.js')).execKind,
  download: async () => (await import('./data/download.js')).downloadKind,
  'data.synthetic': async () => (await import('./data/synthetic.js')).syntheticKind,
  'dataset.cc3m': async () => (await import('./data/cc.js')).cc3mKind,
  'dataset.cc12m': async () => (await import('./data/cc.js')).cc12mKind,
  'dataset.coco': async () => (await import('./data/karpathy.js')).cocoKind,
  'dataset.flickr30k': async () => (await import('./data/karpathy.js')).flickr30kKind,
  'dataset.imagenet': async () => (await import('./data/imagenet.js')).imagenetKind,
  'dataset.glue': async () => (await import('./data/glue.js')).glueKind,
  'dataset.cifar': async () => (await import('./data/cifar.js')).cifarKind,
  'weights.file': async () => (await import('./data/weights.js')).weightsFileKind,
  'weights.convert': async () => (await import('./data/weights.js')).weightsConvertKind,
  'eval.zeroshot': async () => (await import('./eval/eval.js')).evalZeroshot,
  'eval.retrieval': async () => (await import('./eval/eval.js')).evalRetrieval,
  'train.teacher': async () => (await import('./ml/unimodal.js')).trainTeacher,
  'train.image_encoder': async () => (await import('./ml/unimodal.js')).trainImageEncoder,
  'train.mlm': async () => (await import('./ml/unimodal.js')).trainMlm,
  'train.s_smke': async () => (await import('./ml/s-smke.js')).trainSmke,
  'finetune.text': async () => (await import('./ml/finetune.js')).finetuneText,
  'finetune.image': async () => (await import('./ml/finetune.js')).finetuneImage,
  'finetune.retrieval': async () => (await import('./ml/finetune.js')).finetuneRetrieval,
  'report.paper': async () => (await import('./report/paper.js')).reportPaper,
};

const loaded = new Map<string, Promise<AnyStageKind | undefined>>();

/** The kind called `name`, or undefined when smke has no such kind (once per process: a pooled worker asks for each job). */
export function loadKind(name: string): Promise<AnyStageKind | undefined> {
  let kind = loaded.get(name);
  if (!kind) {
    kind = Object.hasOwn(LOADERS, name) ? LOADERS[name as keyof typeof LOADERS]() : Promise.resolve(undefined);
    loaded.set(name, kind);
  }
  return kind;
}
