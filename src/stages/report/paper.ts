// Descriptor of report.paper (run in paper-run.ts). Light at import time.

import { defineKind, type ObjectSchema, type ParamsOf } from '../stage-kind.js';
import { KIND_VERSIONS } from '../kind-versions.js';

const file = { type: 'string', minLength: 1 } as const;
const fileMap = (description: string) => ({ type: 'object', additionalProperties: file, default: {}, description }) as const;

const reportPaperParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    title: { type: 'string', default: 'S-SMKE reproduced with smke' },
    scale: { type: 'string', default: 'mini', description: 'Profile name shown in the report (mini, paper).' },
    pretrain: { ...file, description: 'train.s_smke metrics (parameter count; its curves).' },
    zeroshot: { ...file, description: 'eval.zeroshot metrics on ImageNet (top1).' },
    zeroshot_retrieval: fileMap('eval.retrieval metrics of the pretrained model by set: { coco = ..., flickr = ... }.'),
    image: {
      type: 'object',
      additionalProperties: { type: 'object', additionalProperties: false, properties: { linear: file, finetune: file } },
      default: {},
      description: 'finetune.image metrics by dataset and mode: { imagenet = { linear = ..., finetune = ... }, cifar10 = {...} }.',
    },
    glue: { type: 'array', items: file, default: [], description: 'finetune.text metrics, one per task (glue[*].metrics).' },
    retrieval: fileMap('eval.retrieval metrics of the retrieval-finetuned models by set: { coco = ..., flickr = ... }.'),
    ablation: {
      type: 'object',
      additionalProperties: { type: 'object', additionalProperties: false, properties: { pretrain: file, zeroshot: file, coco: file } },
      default: {},
      description: 'Per variant: train.s_smke metrics (pretrain), eval.zeroshot metrics (zeroshot), eval.retrieval metrics on COCO (coco).',
    },
    curves: fileMap('Extra training stages to plot, label -> metrics (e.g. the unimodal models).'),
    data: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'Evaluation data for the chance baselines: { classify = { imagenet = ..., cifar10 = ... }, pairs = { coco = ..., flickr = ... }, tasks = ... }.',
      properties: {
        classify: { type: 'object', additionalProperties: file },
        pairs: { type: 'object', additionalProperties: file },
        tasks: file,
      },
    },
    expect: {
      type: 'object',
      additionalProperties: { type: 'string', minLength: 1 },
      default: {},
      description:
        "Row id -> band ('>= 60', '< 5', '40..90'; a bound may be 'chance', 'chance + N', 'chance * N'). A value outside its band fails the stage and names the row.",
    },
  },
} as const satisfies ObjectSchema;

export type ReportPaperParams = ParamsOf<typeof reportPaperParams>;

export const reportPaper = defineKind({
  name: 'report.paper',
  version: KIND_VERSIONS['report.paper'],
  summary:
    "The S-SMKE paper's tables from measured metrics: published value and chance baseline beside each, training curves, provenance; `expect` bands fail the stage",
  params: reportPaperParams,
  outputs() {
    return {
      html: { type: 'file', path: 'report.html', description: 'The report as one self-contained page (tables, SVG training curves)' },
      markdown: { type: 'file', path: 'report.md', description: 'The tables in Markdown' },
      json: { type: 'file', path: 'report.json', description: 'Rows, baselines, expectations, provenance and curves as data' },
    };
  },
  resources: () => ({ cpus: 1, memBytes: 512 * 1024 ** 2 }),
  async compare(c) {
    const { compareReports } = await import('./compare-reports.js');
    return compareReports(c);
  },
  async run(ctx, params) {
    const { runReport } = await import('./paper-run.js');
    await runReport(ctx, params);
  },
});
