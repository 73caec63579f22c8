// train.s_smke on 2 GPUs (ranks as real child processes, on the CPU) ends
// where the same stage on one GPU does.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainSmke } from '../../src/stages/ml/s-smke.js';
import { rankDevices } from '../../src/stages/ml/ranks.js';
import { decodeSafetensors } from '../../src/ml/safetensors.js';
import { makeCtx, pretrainedFixture, runKind, type Pretrained, smkeInputs } from './harness.js';

let root: string;
let fx: Pretrained;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-ml-smke-dp-'));
  fx = await pretrainedFixture(root);
}, 180_000);
afterAll(() => rm(root, { recursive: true, force: true }));

const params = () => ({
  ...smkeInputs(fx),
  layers: 1,
  shared_heads: 2,
  batch_size: 8,
  accum_steps: 2,
  bank_size: 24,
  val_batches: 1,
  steps: 6,
  val_every: 3,
  checkpoint_every: 3,
  lr: 3e-3,
});

async function weights(outDir: string) {
  return decodeSafetensors(await readFile(join(outDir, 'model', 'model.safetensors'))).tensors;
}

describe('train.s_smke data-parallel', () => {
  it('2 ranks (child process, own CUDA_VISIBLE_DEVICES) give the parameters and losses of 1 rank', async () => {
    const one = await makeCtx(root, 'dp-one');
    await runKind(trainSmke, one.ctx, params());
    const two = await makeCtx(root, 'dp-two');
    two.ctx.resources = { ...two.ctx.resources, gpus: 2, gpuIds: [0, 1] };
    await runKind(trainSmke, two.ctx, params());
    expect(two.rec.logs.join('\n')).toContain('data-parallel: 2 ranks on GPUs 0, 1');
    const a = await weights(one.ctx.outDir),
      b = await weights(two.ctx.outDir);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    let worst = 0;
    for (const [k, t] of a) {
      const u = b.get(k)!.data as Float32Array;
      (t.data as Float32Array).forEach((v, i) => (worst = Math.max(worst, Math.abs(v - u[i]!))));
    }
    expect(worst).toBeLessThan(1e-5);
    const loss = (rec: typeof one.rec) => rec.metrics.filter((m) => m.name === 'loss' && m.step !== undefined).map((m) => m.value);
    expect(loss(two.rec)).toHaveLength(6);
    loss(two.rec).forEach((v, i) => expect(Math.abs(v - loss(one.rec)[i]!)).toBeLessThan(1e-5));
    const m1 = JSON.parse(await readFile(join(one.ctx.outDir, 'metrics.json'), 'utf8'));
    const m2 = JSON.parse(await readFile(join(two.ctx.outDir, 'metrics.json'), 'utf8'));
    expect(Math.abs(m2.val_loss - m1.val_loss)).toBeLessThan(1e-4);
  }, 240_000);

  it('data = "stream": 2 ranks match 1 rank, and a run killed mid-way resumes to the same parameters', async () => {
    const streamed = { ...params(), data: 'stream' };
    const one = await makeCtx(root, 'st-one');
    await runKind(trainSmke, one.ctx, streamed);
    expect(one.rec.logs.join('\n')).toMatch(/streaming 64 training pairs from 1 shards \(8 batches per epoch\)/);
    const two = await makeCtx(root, 'st-two');
    two.ctx.resources = { ...two.ctx.resources, gpus: 2, gpuIds: [0, 1] };
    await runKind(trainSmke, two.ctx, streamed);
    const a = await weights(one.ctx.outDir);
    const worst = (b: Awaited<ReturnType<typeof weights>>) => {
      let w = 0;
      for (const [k, t] of a) (t.data as Float32Array).forEach((v, i) => (w = Math.max(w, Math.abs(v - (b.get(k)!.data as Float32Array)[i]!))));
      return w;
    };
    expect(worst(await weights(two.ctx.outDir))).toBeLessThan(1e-5);
    // Streaming reads another order and augmentation than the in-memory path: the comparison can fail.
    const mem = await makeCtx(root, 'st-mem');
    await runKind(trainSmke, mem.ctx, params());
    expect(worst(await weights(mem.ctx.outDir))).toBeGreaterThan(1e-3);

    const ac = new AbortController();
    const crashed = await makeCtx(root, 'st-crash', { signal: ac.signal });
    const progress = crashed.ctx.progress;
    crashed.ctx.progress = (done, total, unit) => {
      progress(done, total, unit);
      if (done === 5) ac.abort(new Error('killed'));
    };
    await expect(runKind(trainSmke, crashed.ctx, streamed)).rejects.toThrow();
    const again = await makeCtx(root, 'st-crash', { scratchDir: crashed.ctx.scratchDir });
    await runKind(trainSmke, again.ctx, streamed);
    expect(again.rec.logs.join('\n')).toContain('resuming from step 3');
    expect(worst(await weights(again.ctx.outDir))).toBe(0);
  }, 300_000);

  it("ranks take the scheduler's grant, or on Slurm (no grant) the allocation's CUDA_VISIBLE_DEVICES", async () => {
    const { ctx } = await makeCtx(root, 'dp-dev');
    expect(rankDevices({ ...ctx, resources: { ...ctx.resources, gpus: 2, gpuIds: [3, 5] } }, {})).toEqual([3, 5]);
    expect(rankDevices({ ...ctx, resources: { ...ctx.resources, gpus: 2, gpuIds: [] } }, { CUDA_VISIBLE_DEVICES: '0,1' })).toEqual([0, 1]);
    // One GPU, none, or a list shorter than the request: one rank, as before.
    expect(rankDevices({ ...ctx, resources: { ...ctx.resources, gpus: 1, gpuIds: [] } }, { CUDA_VISIBLE_DEVICES: '0,1' })).toEqual([]);
    expect(rankDevices({ ...ctx, resources: { ...ctx.resources, gpus: 2, gpuIds: [] } }, { CUDA_VISIBLE_DEVICES: '0' })).toEqual([]);
    expect(rankDevices({ ...ctx, resources: { ...ctx.resources, gpus: 0, gpuIds: [] } }, {})).toEqual([]);
  });

  it('refuses accum_steps that the GPUs cannot share, before starting anything', async () => {
    const { ctx } = await makeCtx(root, 'dp-bad');
    ctx.resources = { ...ctx.resources, gpus: 2, gpuIds: [0, 1] };
    await expect(runKind(trainSmke, ctx, { ...params(), accum_steps: 1 })).rejects.toThrow(/accum_steps to be a multiple of 2/);
  });
});
