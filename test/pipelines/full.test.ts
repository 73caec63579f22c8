// pipelines/full.smke: both profiles compile to the same DAG shape, the paper
// profile carries the published hyperparameters, and one GLUE task's learning
// rate reaches exactly that instance (and, through it, the report).
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compiler/index.js';
import { renderDiagnostics } from '../../src/compiler/render-diagnostics.js';
import { isOutputRef, type Plan, type StageInstance, type Value } from '../../src/compiler/plan.js';
import { planGraph } from '../../src/compiler/plan-graph.js';
import { registry } from '../../src/stages/registry.js';

const root = resolve(__dirname, '..', '..');

function plan(profile?: string, set?: Record<string, string>, env: Record<string, string> = {}): Plan {
  const r = compile({ file: 'pipelines/full.smke', projectDir: root, catalog: registry(), profile, set, env });
  if (!r.plan) throw new Error(renderDiagnostics(r.diagnostics, r.texts ?? new Map()));
  return r.plan;
}
const inst = (p: Plan, id: string): StageInstance => p.instances.find((i) => i.id === id)!;
const GLUE = ['cola', 'sst2', 'mrpc', 'qqp', 'stsb', 'mnli', 'qnli', 'rte', 'wnli'];
// QQP and WNLI finetune after task-adaptive pretraining, in a sweep of their own.
const ADAPTED = ['qqp', 'wnli'];
const glueId = (t: string) => (ADAPTED.includes(t) ? `glue_adapted[${t}]` : `glue[${t}]`);

describe('pipelines/full.smke', () => {
  const mini = plan();
  const paper = plan('paper', undefined, { SMKE_DATA: '/datasets' });

  it('has every stage of the workflow, the same in both profiles', () => {
    expect(mini.profile).toBe('mini');
    const ids = mini.instances.map((i) => i.id).sort();
    expect(paper.instances.map((i) => i.id).sort()).toEqual(ids);
    for (const id of [
      'coco',
      'flickr',
      'cc3m',
      'cc12m',
      'imagenet',
      'glue_data',
      'cifar10',
      'cifar100',
      'teacher',
      'image_encoder',
      'text_encoder',
      's_smke',
      'zeroshot',
      'zs_coco',
      'zs_flickr',
      'in1k_linear',
      'in1k_finetune',
      'cifar10_linear',
      'cifar100_finetune',
      'ft_coco',
      'ft_flickr',
      'ret_coco',
      'ret_flickr',
      's_smke_scratch',
      's_smke_nobank',
      'report',
    ])
      expect(ids).toContain(id);
    for (const t of GLUE) expect(inst(mini, glueId(t)).params.task).toBe(t);
    // The report reads every evaluation: each of them is upstream of it.
    const preds = new Set(planGraph(mini).predecessors('report'));
    for (const id of [
      'zeroshot',
      'zs_coco',
      'zs_flickr',
      'in1k_linear',
      'cifar100_finetune',
      'ret_coco',
      'ret_flickr',
      'ablation_zs_scratch',
      'ablation_coco_nobank',
      ...GLUE.map(glueId),
    ])
      expect(preds.has(id)).toBe(true);
  });

  it('shares every stage after pretraining between the profiles', () => {
    const before = new Set([
      'coco',
      'flickr',
      'cc3m',
      'cc12m',
      'imagenet',
      'glue_data',
      'cifar10',
      'cifar100',
      'teacher',
      'image_encoder',
      'text_encoder',
      's_smke',
      's_smke_scratch',
      's_smke_nobank',
    ]);
    for (const i of mini.instances) {
      if (before.has(i.id)) continue;
      const p = inst(paper, i.id);
      expect(p.kind, i.id).toBe(i.kind);
      expect(p.refs, i.id).toEqual(i.refs);
    }
  });

  it('mini uses the synthetic data and trains its unimodal models; paper reads real data and published weights', () => {
    expect(inst(mini, 'coco').kind).toBe('data.synthetic');
    expect(inst(mini, 'teacher').kind).toBe('train.teacher');
    expect(inst(mini, 'text_encoder').kind).toBe('train.mlm');
    // The mini split of the unimodal budget: 600 SimCLR image steps, 100 MLM steps, the teacher's 200.
    expect(inst(mini, 'image_encoder').params.steps).toBe(600);
    expect(inst(mini, 'text_encoder').params.steps).toBe(100);
    expect(inst(mini, 'teacher').params.steps).toBe(200);
    expect(inst(paper, 'coco').kind).toBe('dataset.coco');
    expect(inst(paper, 'flickr').params.archive).toBe('/datasets/flickr30k/flickr30k-images.tar.gz');
    expect(inst(paper, 'cc3m').params.tsv).toBe('/datasets/cc3m/Train-GCC-training.tsv');
    expect(inst(paper, 'cc12m').params.limit).toBe(3000000);
    expect(inst(paper, 'imagenet').kind).toBe('dataset.imagenet');
    expect(inst(paper, 'teacher')).toMatchObject({ kind: 'weights.convert', params: { path: '/datasets/models/beitv2_base_patch16_224_pt1k.pth' } });
    expect(inst(paper, 'image_encoder').params.path).toBe('/datasets/models/base_imagenet.pt');
    // The HF BERT directory is a declared input: its content is part of the key.
    expect(inst(paper, 'text_encoder')).toMatchObject({ kind: 'exec', inputs: ['/datasets/models/bert-base-uncased'] });
  });

  it('paper: the published S-SMKE hyperparameters', () => {
    // A global batch of 256 per step: one micro-batch of 128 per GPU.
    expect(inst(paper, 's_smke').params).toMatchObject({
      steps: 89273,
      batch_size: 128,
      accum_steps: 2,
      lr: 1e-4,
      bank_size: 65536,
      layers: 6,
      shared_heads: 12,
      init: 'pretrained',
    });
    expect(inst(paper, 's_smke').resources.gpus).toBe(2);
    const pairs = inst(paper, 's_smke').params.pairs as Value[];
    expect(pairs.map((p) => (isOutputRef(p) ? p.$ref.instance : p))).toEqual(['coco', 'cc3m', 'cc12m']);
  });

  it('the ablation differs from s_smke in exactly one setting each, at equal steps', () => {
    const base = inst(mini, 's_smke').params;
    const diff = (id: string) => Object.keys(inst(mini, id).params).filter((k) => JSON.stringify(inst(mini, id).params[k]) !== JSON.stringify(base[k]));
    expect(diff('s_smke_scratch')).toEqual(['init']);
    expect(diff('s_smke_nobank')).toEqual(['bank_size']);
    expect(inst(mini, 's_smke_nobank').params.bank_size).toBe(0);
    expect(inst(mini, 's_smke_scratch').params.init).toBe('random');
  });

  it('--set lr_rte changes the params of glue[rte] alone', () => {
    const changed = plan(undefined, { lr_rte: '2.5e-3' });
    const differ = mini.instances.filter((i) => JSON.stringify(i.params) !== JSON.stringify(inst(changed, i.id).params)).map((i) => i.id);
    expect(differ).toEqual(['glue[rte]']);
    expect(inst(changed, 'glue[rte]').params.lr).toBe(2.5e-3);
  });

  it('GLUE steps per task: CoLA, SST-2, MRPC, STS-B, RTE and MNLI get their own in the mini profile, every task the paper schedule in the paper profile', () => {
    const steps = (p: Plan) => Object.fromEntries(GLUE.map((t) => [t, inst(p, glueId(t)).params.steps]));
    expect(steps(mini)).toEqual({ cola: 400, sst2: 200, mrpc: 600, qqp: 200, stsb: 400, mnli: 200, qnli: 80, rte: 200, wnli: 200 });
    expect(new Set(Object.values(steps(paper)))).toEqual(new Set([10000]));
    const changed = plan(undefined, { steps_stsb: '300' });
    expect(steps(changed)).toMatchObject({ stsb: 300, cola: 400, sst2: 200, mnli: 200 });
    expect(mini.instances.filter((i) => JSON.stringify(i.params) !== JSON.stringify(inst(changed, i.id).params)).map((i) => i.id)).toEqual(['glue[stsb]']);
  });

  it('task-adaptive pretraining for QQP and WNLI in the mini profile only; the other seven tasks carry none of its parameters', () => {
    expect(inst(mini, glueId('qqp')).params.adapt_steps).toBe(800);
    expect(inst(mini, glueId('wnli')).params.adapt_steps).toBe(400);
    for (const t of ADAPTED) {
      expect(inst(mini, glueId(t)).params).toMatchObject({ adapt_lr: 3e-3, lr: 2e-3 });
      expect(inst(paper, glueId(t)).params).toMatchObject({ adapt_steps: 0, steps: 10000, lr: 2e-5 });
    }
    for (const t of GLUE.filter((x) => !ADAPTED.includes(x)))
      for (const p of [mini, paper]) expect(Object.keys(inst(p, glueId(t)).params).filter((k) => k.startsWith('adapt_'))).toEqual([]);
  });
});
