// Running stage kinds directly in tests: a StageContext that records what the
// stage reports, params validated and defaulted by the kind's schema (as the
// compiler does), and a small synthetic dataset generated once per process.

import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { expect } from 'vitest';
import type { Value } from '../../src/compiler/plan.js';
import type { AnyStageKind, StageContext } from '../../src/stages/stage-kind.js';
import { generateSynthetic } from '../../src/data/synthetic/index.js';

export interface Recorded {
  metrics: { name: string; value: number; step?: number }[];
  progress: { done: number; total: number; unit?: string }[];
  logs: string[];
}

export async function makeCtx(
  root: string,
  name: string,
  opts: { seed?: number; scratchDir?: string; signal?: AbortSignal } = {},
): Promise<{ ctx: StageContext; rec: Recorded }> {
  const outDir = join(root, name, 'out');
  const scratchDir = opts.scratchDir ?? join(root, name, 'scratch');
  await mkdir(outDir, { recursive: true });
  await mkdir(scratchDir, { recursive: true });
  const rec: Recorded = { metrics: [], progress: [], logs: [] };
  const log = (lvl: string) => (m: string) => rec.logs.push(`${lvl}: ${m}`);
  const ctx: StageContext = {
    instance: name,
    stage: name,
    key: `key-${name}`,
    outDir,
    scratchDir,
    projectDir: root,
    attempt: 1,
    seed: opts.seed ?? 7,
    resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
    backend: 'wasm',
    log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    progress: (done, total, unit) => rec.progress.push({ done, total, unit }),
    metric: (n, value, step) => rec.metrics.push({ name: n, value, step }),
    signal: opts.signal ?? new AbortController().signal,
  };
  return { ctx, rec };
}

/** Validates and fills defaults the way the compiler does (ajv, useDefaults). */
export function resolveParams(kind: AnyStageKind, params: Record<string, Value>): Record<string, Value> {
  const ajv = new Ajv({ useDefaults: true, strict: false });
  const copy = structuredClone(params);
  const validate = ajv.compile(kind.params);
  if (!validate(copy)) throw new Error(`${kind.name}: ${ajv.errorsText(validate.errors)}`);
  return copy;
}

export async function runKind(kind: AnyStageKind, ctx: StageContext, params: Record<string, Value>): Promise<void> {
  await kind.run(ctx, resolveParams(kind, params));
}

let synthetic: Promise<string> | undefined;

/** A tiny synthetic corpus (16 px images), generated once per test process. */
export function tinySynthetic(): Promise<string> {
  synthetic ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smke-ml-syn-'));
    await generateSynthetic(dir, {
      seed: 1,
      imageSize: 16,
      coco: { train: 64, val: 16, test: 16 },
      flickr: { train: 8, val: 4, test: 8 },
      classify: { classes: 4, trainPerClass: 12, valPerClass: 6 },
      text: { train: 64, eval: 24 },
      corpusLines: 400,
      shardSize: 100,
    });
    return dir;
  })();
  return synthetic;
}

export function lastMetric(rec: Recorded, name: string): number | undefined {
  return rec.metrics.filter((m) => m.name === name).at(-1)?.value;
}

export interface Pretrained {
  syn: string;
  teacher: string;
  image: string;
  text: string;
}

/** train.s_smke's inputs from a pretrained fixture: the COCO-like pairs and the three unimodal checkpoints. */
export function smkeInputs(fx: Pretrained): { pairs: string[]; teacher: string; image_encoder: string; text_encoder: string } {
  return { pairs: [join(fx.syn, 'coco')], teacher: fx.teacher, image_encoder: fx.image, text_encoder: fx.text };
}

/**
 * Small unimodal checkpoints (teacher, image encoder, text encoder) trained for
 * a few steps on the tiny synthetic set, for the downstream kinds' tests.
 */
export async function pretrainedFixture(
  root: string,
  arch: { image_size: number; patch_size: number; width: number; heads: number; depth?: number } = { image_size: 16, patch_size: 4, width: 16, heads: 2 },
  steps = 30,
): Promise<Pretrained> {
  const { trainTeacher, trainImageEncoder, trainMlm } = await import('../../src/stages/ml/unimodal.js');
  const syn = await tinySynthetic();
  const vit = {
    image_size: arch.image_size,
    patch_size: arch.patch_size,
    width: arch.width,
    heads: arch.heads,
    depth: arch.depth ?? 2,
    batch_size: 16,
    steps,
    lr: 3e-3,
  };
  const t = await makeCtx(root, 'fx-teacher');
  await runKind(trainTeacher, t.ctx, { images: join(syn, 'classify'), ...vit, width: arch.width + 8 });
  const i = await makeCtx(root, 'fx-image');
  await runKind(trainImageEncoder, i.ctx, { images: join(syn, 'coco'), ...vit });
  const m = await makeCtx(root, 'fx-text');
  await runKind(trainMlm, m.ctx, {
    corpus: join(syn, 'corpus'),
    vocab_size: 200,
    max_len: 16,
    width: arch.width,
    heads: arch.heads,
    depth: arch.depth ?? 2,
    batch_size: 16,
    steps,
    lr: 3e-3,
  });
  return { syn, teacher: join(t.ctx.outDir, 'model'), image: join(i.ctx.outDir, 'model'), text: join(m.ctx.outDir, 'model') };
}

/** Every step's throughput is near the median: steps read back two at a time (before an evaluation) must not report ~0 s. */
export function expectSteadyThroughput(metrics: { name: string; value: number; step?: number }[], steps: number): void {
  const t = metrics.filter((m) => m.name === 'throughput' && m.step !== undefined).map((m) => m.value);
  expect(t).toHaveLength(steps);
  const median = [...t].sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
  for (const v of t) expect(v / median).toBeLessThan(20);
}
