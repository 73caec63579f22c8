import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { trainSmke } from '../../src/stages/ml/s-smke.js';
import { makeCtx, pretrainedFixture, resolveParams, type Pretrained, smkeInputs } from './harness.js';

let root: string;
let fx: Pretrained;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-ml-mem-'));
  // The mini profile's architecture (train.s_smke and unimodal defaults), trained just enough to exist.
  fx = await pretrainedFixture(root, { image_size: 32, patch_size: 8, width: 48, heads: 4 }, 2);
}, 180_000);
afterAll(() => rm(root, { recursive: true, force: true }));

describe('mini S-SMKE training resources', () => {
  it('stays under 2 GB resident memory with a flat tensor count at the mini defaults', async () => {
    const { ctx } = await makeCtx(root, 'mem');
    const rss: number[] = [];
    const tensors: number[] = [];
    ctx.progress = () => {
      rss.push(process.memoryUsage().rss);
      tensors.push(tf.memory().numTensors);
    };
    // Defaults except the step count: batch 32, width 48, 32 px, bank 1024.
    const params = resolveParams(trainSmke, {
      ...smkeInputs(fx),
      steps: 6,
      val_every: 3,
    });
    expect(params.batch_size).toBe(32);
    await trainSmke.run(ctx, params);
    expect(Math.max(...rss)).toBeLessThan(2 * 1024 ** 3);
    // From the second step on (AdamW's moments exist), steps allocate nothing that outlives them.
    // A step is reported while the next one's metrics (one tensor) are in flight, except before
    // a validation and at the end: the count may differ by that one tensor, never grow.
    const later = tensors.slice(1);
    expect(Math.max(...later) - Math.min(...later)).toBeLessThanOrEqual(1);
    const m = JSON.parse(await readFile(join(ctx.outDir, 'metrics.json'), 'utf8'));
    expect(m.params).toBeGreaterThan(100_000);
  }, 180_000);
});
