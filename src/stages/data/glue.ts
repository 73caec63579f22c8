// `dataset.glue`: the 9 GLUE tasks from the original distribution (the files
// download_glue_data.py fetches), in the text-tasks format.

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

export const GLUE_BASE = 'https://dl.fbaipublicfiles.com/glue/data';
export const MRPC_BASE = 'https://dl.fbaipublicfiles.com/senteval/senteval_data';
const TASKS = ['cola', 'sst2', 'mrpc', 'qqp', 'stsb', 'mnli', 'qnli', 'rte', 'wnli'] as const;

const glueParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tasks: { type: 'array', items: { enum: TASKS }, uniqueItems: true, minItems: 1, default: TASKS, description: 'Tasks to fetch.' },
    base_url: {
      type: 'string',
      pattern: '^(https?|file)://',
      default: GLUE_BASE,
      description: 'Where the task zips (CoLA.zip, SST-2.zip, ...) and mrpc_dev_ids.tsv live; SMKE_MIRROR applies.',
    },
    mrpc_url: {
      type: 'string',
      pattern: '^(https?|file)://',
      default: MRPC_BASE,
      description: 'Where msr_paraphrase_train.txt / msr_paraphrase_test.txt live.',
    },
  },
} as const satisfies ObjectSchema;

export type GlueParams = ParamsOf<typeof glueParams>;

export const glueKind = defineKind({
  name: 'dataset.glue',
  version: KIND_VERSIONS['dataset.glue'],
  summary: 'The 9 GLUE tasks (train, dev, unlabelled test) in the common text-tasks format',
  params: glueParams,
  outputs() {
    return {
      tasks: { type: 'dir', path: 'glue', description: 'The tasks (text-tasks format)' },
      stats: { type: 'metrics', path: 'stats.json', description: 'Examples and malformed rows per task and split' },
    };
  },
  resources: () => ({ cpus: 1, memBytes: 2 << 30 }),
  async run(ctx, params) {
    const { runGlue } = await import('./glue-run.js');
    await runGlue(ctx, params);
  },
});
