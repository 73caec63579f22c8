import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/ml/backend.js';
import { inProcessGroup, listenRoot, rankShare, soloCommunicator, type Communicator } from '../../src/ml/data-parallel.js';
import { ParamStore } from '../../src/ml/params.js';
import { defineSmke } from '../../src/ml/smke.js';
import { AdamW } from '../../src/ml/optim.js';
import { MemoryBank } from '../../src/ml/losses.js';
import { smkeTrainStep, type SmkeBatch } from '../../src/ml/smke-train.js';
import { TINY, tinyBatch, disposeBatch } from './tiny.js';
// @ts-expect-error: a plain ES module shared with the child processes
import { linearRun } from './dp-linear.mjs';

type Params = { w: number[]; b: number[] };
const run = linearRun as (comm: Communicator, o?: { seed?: number; steps?: number; B?: number }) => Promise<Params>;

let dir: string;
beforeAll(async () => {
  await selectBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'smke-dp-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const group = (n: number, f: (c: Communicator) => Promise<Params>) => Promise.all(inProcessGroup(n).map(f));

describe('data-parallel collectives', () => {
  it('average in rank order and gather in rank order, identically on every rank', async () => {
    const g = inProcessGroup(3);
    const means = await Promise.all(g.map((c) => c.allReduceMean(Float32Array.of(c.rank, 10 * c.rank))));
    for (const m of means) expect(Array.from(m)).toEqual([1, 10]);
    const gathered = await Promise.all(g.map((c) => c.allGather(Float32Array.from({ length: c.rank + 1 }, () => c.rank))));
    for (const x of gathered) expect(Array.from(x)).toEqual([0, 1, 1, 2, 2, 2]);
  });

  it('refuses mismatched buffers and uneven shares with a clear message', async () => {
    const g = inProcessGroup(2);
    await expect(Promise.all([g[0]!.allReduceMean(new Float32Array(2)), g[1]!.allReduceMean(new Float32Array(3))])).rejects.toThrow(/same size/);
    expect(() => rankShare([1, 2, 3], 0, 2)).toThrow(/multiple of the number of GPUs/);
    expect(rankShare([1, 2, 3, 4], 1, 2)).toEqual([3, 4]);
  });
});

describe('data-parallel training equals one rank with the whole batch', () => {
  it('N ranks with batch B/N give the parameters of one rank with batch B (1e-5)', async () => {
    const [one] = await group(1, (c) => run(c, { B: 8, steps: 6 }));
    for (const n of [2, 4, 8]) {
      const ranks = await group(n, (c) => run(c, { B: 8, steps: 6 }));
      for (const r of ranks) {
        expect(maxDiff(r.w, one!.w), `N=${n}`).toBeLessThan(1e-5);
        expect(maxDiff(r.b, one!.b), `N=${n}`).toBeLessThan(1e-5);
        // Every rank holds the same bytes: the reduction result is broadcast, not recomputed.
        expect(r).toEqual(ranks[0]);
      }
      // A different batch gives different parameters: the comparison can fail.
      expect(maxDiff(ranks[0]!.w, (await group(1, (c) => run(c, { B: 8, steps: 6, seed: 2 })))[0]!.w)).toBeGreaterThan(1e-3);
    }
  });

  it('over real processes (one per rank, Unix socket, rank 0 reducing) gives the in-process result bit for bit', async () => {
    const world = 3,
      B = 6,
      steps = 4;
    const path = join(dir, 'dp.sock');
    const { ready } = await listenRoot(path, world, { timeoutMs: 60_000 });
    const script = join(__dirname, 'dp-linear.mjs');
    const children = Array.from(
      { length: world - 1 },
      (_, i) =>
        new Promise<number>((resolve) => {
          const p = spawn(process.execPath, [script, path, String(i + 1), String(world), String(B), String(steps)], {
            stdio: ['ignore', 'inherit', 'inherit'],
            env: { ...process.env, CUDA_VISIBLE_DEVICES: String(i + 1) },
          });
          p.on('exit', (code) => resolve(code ?? 1));
        }),
    );
    const comm = await ready;
    const root = await run(comm, { B, steps });
    await comm.close();
    expect(await Promise.all(children)).toEqual([0, 0]);
    const inProc = await group(world, (c) => run(c, { B, steps }));
    expect(root).toEqual(inProc[0]);
    const [one] = await group(1, (c) => run(c, { B, steps }));
    expect(maxDiff(root.w, one!.w)).toBeLessThan(1e-5);
  }, 60_000);
});

describe('the socket transport', () => {
  it('carries frames of millions of floats in many chunks, back to back, exactly as the in-process group combines them', async () => {
    const { connectRank } = await import('../../src/ml/data-parallel.js');
    const path = join(dir, 'big.sock');
    const world = 3,
      n = 3_000_001;
    const { ready } = await listenRoot(path, world, { timeoutMs: 60_000 });
    const others = Promise.all([1, 2].map((r) => connectRank(path, r, world)));
    const comms = [await ready, ...(await others)];
    const input = (r: number, k: number) => Float32Array.from({ length: n - k }, (_, i) => Math.sin(i * 0.001 + r) * (r + 1) + k);
    for (let k = 0; k < 3; k++) {
      const viaSocket = await Promise.all(comms.map((c) => c.allReduceMean(input(c.rank, k))));
      const inProc = await Promise.all(inProcessGroup(world).map((c) => c.allReduceMean(input(c.rank, k))));
      for (const x of viaSocket)
        expect(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(inProc[0]!.buffer, inProc[0]!.byteOffset, inProc[0]!.byteLength))).toBe(
          true,
        );
    }
    const gathered = await Promise.all(comms.map((c) => c.allGather(Float32Array.of(c.rank, -c.rank))));
    for (const g of gathered) expect(Array.from(g)).toEqual([0, -0, 1, -1, 2, -2]);
    for (const c of comms.reverse()) await c.close();
  }, 60_000);
});

describe('a rank that stops', () => {
  it("fails the other ranks' next collective with a message naming it, instead of hanging", async () => {
    const path = join(dir, 'dp-stop.sock');
    const { ready } = await listenRoot(path, 2, { timeoutMs: 60_000 });
    // The child trains 2 steps and leaves; rank 0 wants 4.
    const child = spawn(process.execPath, [join(__dirname, 'dp-linear.mjs'), path, '1', '2', '4', '2'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const comm = await ready;
    await expect(run(comm, { B: 4, steps: 4 })).rejects.toThrow(/data-parallel: rank 1 disconnected; the other ranks stop too/);
    await comm.close();
    expect(await exited).toBe(0);
  }, 60_000);

  it('a rank 0 that never comes is reported, not waited for forever', async () => {
    const { connectRank } = await import('../../src/ml/data-parallel.js');
    await expect(connectRank(join(dir, 'nobody.sock'), 1, 2)).rejects.toThrow(/rank 1 could not reach rank 0/);
    const { ready, server } = await listenRoot(join(dir, 'lonely.sock'), 2, { timeoutMs: 200 });
    await expect(ready).rejects.toThrow(/only 1 of 2 ranks connected within 0.2s/);
    server.close();
  });
});

describe('S-SMKE data-parallel step with a memory bank', () => {
  /** `steps` steps of the tiny model; each step's micro-batches are shared out by rank. */
  async function smkeRun(comm: Communicator | undefined, micros: number, steps: number, bankSize = 8) {
    const ps = new ParamStore(5);
    defineSmke(ps, TINY);
    const opt = new AdamW(ps);
    const bank = new MemoryBank(bankSize, TINY.teacherDim, 11);
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const all: SmkeBatch[] = Array.from({ length: micros }, (_, k) => tinyBatch(100 * s + k, 4));
      const mine = comm ? rankShare(all, comm.rank, comm.world) : all;
      const r = await (await smkeTrainStep(ps, TINY, opt, bank, mine, 3e-3, 1.0, comm)).read();
      losses.push(r.loss);
      all.forEach(disposeBatch);
    }
    const params = new Map([...(await ps.snapshot())].map(([k, v]) => [k, Array.from(v.data)]));
    const bankData = bankSize > 0 ? Array.from(await bank.data()) : [];
    bank.dispose();
    opt.dispose();
    ps.dispose();
    return { params, bank: bankData, losses };
  }

  it('2 and 4 ranks match one rank given every micro-batch; the bank is the same on every rank', async () => {
    const one = await smkeRun(undefined, 4, 3);
    for (const n of [2, 4]) {
      const ranks = await Promise.all(inProcessGroup(n).map((c) => smkeRun(c, 4, 3)));
      for (const r of ranks) {
        for (const [k, v] of one.params) expect(maxDiff(r.params.get(k)!, v), `${k}, N=${n}`).toBeLessThan(1e-5);
        expect(r.bank).toEqual(ranks[0]!.bank);
        expect(r.params).toEqual(ranks[0]!.params);
        expect(maxDiff(r.losses, one.losses)).toBeLessThan(1e-5);
      }
      // The teacher targets enter the bank exactly as one rank enqueues them (same rows, same order).
      expect(maxDiff(ranks[0]!.bank, one.bank)).toBeLessThan(1e-6);
    }
  }, 60_000);

  it('one rank with a bank trains (the case the reference implementation crashed on, docs/method.md) and equals the plain single-process step', async () => {
    const plain = await smkeRun(undefined, 2, 3);
    const solo = await smkeRun(soloCommunicator(), 2, 3);
    expect(solo.params).toEqual(plain.params);
    expect(solo.bank).toEqual(plain.bank);
    expect(solo.losses.every(Number.isFinite)).toBe(true);
    const inProc = await smkeRun(inProcessGroup(1)[0], 2, 3);
    expect(inProc.bank).toEqual(plain.bank);
    // and without a bank (the ablation) across ranks
    const nobank = await Promise.all(inProcessGroup(2).map((c) => smkeRun(c, 2, 2, 0)));
    const nobankOne = await smkeRun(undefined, 2, 2, 0);
    for (const [k, v] of nobankOne.params) expect(maxDiff(nobank[1]!.params.get(k)!, v)).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBeLessThan(10_000);
  }, 60_000);
});
