// The GPU-friendly training step, checked on the CPU backends: embedding by
// gather (same loss and gradients as the one-hot product it replaced), no
// read-back to the CPU inside a step, AdamW and clipping in few kernels.
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ml/backend.js';
import { embed, oneHotFloat } from '../../src/ml/layers.js';
import { countKernels } from '../../src/ml/kernel-count.js';
import { ParamStore } from '../../src/ml/params.js';
import { defineSmke, smkeLoss } from '../../src/ml/smke.js';
import { AdamW, lossAndGrads } from '../../src/ml/optim.js';
import { MemoryBank } from '../../src/ml/losses.js';
import { smkeTrainStep } from '../../src/ml/smke-train.js';
import { unsortedSegmentSumInto } from '../../src/ml/wasm-kernels.js';
import { Rng } from '../../src/data/rng.js';
import { TINY, disposeBatch, tinyBatch } from './tiny.js';

afterAll(async () => {
  await selectBackend('cpu');
});

/** The lookup as it was before: one-hot rows times the table (an independent computation of the same function). */
function embedOneHot(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [vocab, d] = table.shape as [number, number];
  return tf.matMul(oneHotFloat(ids, vocab), table).reshape([...ids.shape, d]);
}

function randomArray(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.normal());
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

// [vocab, dim, ids shape, ids]: repeated ids, padding (id 0 on the right), a single token, a 1-D and a 3-D batch.
const CASES: [number, number, number[], number[]][] = [
  [5, 3, [1, 1], [4]],
  [7, 4, [2, 5], [3, 3, 3, 0, 0, 1, 6, 6, 0, 0]],
  [11, 8, [3, 7], [1, 2, 3, 4, 0, 0, 0, 10, 10, 10, 10, 10, 10, 10, 5, 0, 0, 0, 0, 0, 0]],
  [4, 2, [6], [0, 1, 2, 3, 1, 1]],
  [9, 5, [2, 2, 3], [8, 8, 0, 1, 2, 0, 7, 7, 7, 3, 0, 0]],
];

describe.each(['cpu', 'wasm'])('embedding by gather on %s', (backend) => {
  it.each(CASES.map((c, i) => [i, ...c] as const))('case %i: same loss and table gradient as the one-hot product', async (i, vocab, dim, shape, idList) => {
    await selectBackend(backend);
    const rng = new Rng(100 + i);
    const table = tf.variable(tf.tensor2d(randomArray(rng, vocab * dim), [vocab, dim]));
    const ids = tf.tensor(idList, shape, 'int32');
    const weight = tf.tensor(randomArray(rng, idList.length * dim), [...shape, dim]);
    const run = (f: typeof embed) => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.sin(f(table, ids)), weight)) as tf.Scalar, [table]);
      const out = { loss: value.dataSync()[0]!, grad: grads[table.name]!.dataSync().slice() };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const gather = run(embed);
    const oneHot = run(embedOneHot);
    expect(Math.abs(gather.loss - oneHot.loss)).toBeLessThan(1e-5);
    expect(maxDiff(gather.grad, oneHot.grad)).toBeLessThan(1e-5);
    // A row no id names gets a zero gradient; a repeated id gets the sum of its rows' gradients.
    const used = new Set(idList);
    for (let r = 0; r < vocab; r++) if (!used.has(r)) expect(Array.from(gather.grad.slice(r * dim, (r + 1) * dim))).toEqual(new Array(dim).fill(0));
    tf.dispose([table, ids, weight]);
  });
});

describe('the wasm scatter-add (gradient of the gather)', () => {
  it('sums rows by id in index order and drops ids out of range', () => {
    const out = new Float32Array(6);
    unsortedSegmentSumInto(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), Int32Array.of(2, 0, 2, -1, 3), 3, out);
    expect(Array.from(out)).toEqual([3, 4, 0, 0, 6, 8]);
    const empty = Float32Array.of(9, 9);
    unsortedSegmentSumInto(new Float32Array(0), new Int32Array(0), 2, empty);
    expect(Array.from(empty)).toEqual([0, 0]);
  });
});

describe.each(['cpu', 'wasm'])('a training step on %s', (backend) => {
  it('the counter sees read-backs and kernels (so a zero below means none happened)', async () => {
    await selectBackend(backend);
    const { counts } = await countKernels(async () => {
      const a = tf.add(tf.ones([3]), 1);
      a.dataSync();
      await a.data();
      a.arraySync();
      a.dispose();
    });
    expect(counts.readbacks).toBe(3);
    expect(counts.kernels).toBe(1);
    expect(counts.byName.get('Add')).toBe(1);
    // Restored afterwards: nothing counted outside.
    const after = await countKernels(() => undefined);
    expect(after.counts.kernels).toBe(0);
  });

  it.each([
    ['one micro-batch, bank', 1, 8],
    ['two micro-batches, bank', 2, 8],
    ['no bank (in-batch KD)', 1, 0],
  ] as const)('reads nothing back to the CPU: %s', async (_, micros, bankSize) => {
    await selectBackend(backend);
    const ps = new ParamStore(3);
    defineSmke(ps, TINY);
    const opt = new AdamW(ps);
    const bank = new MemoryBank(bankSize, TINY.teacherDim, 4);
    const batches = Array.from({ length: micros }, (_, k) => tinyBatch(10 + k));
    for (let step = 0; step < 3; step++) {
      const { result, counts } = await countKernels(() => smkeTrainStep(ps, TINY, opt, bank, batches, 1e-3, 0.5));
      expect(counts.readbacks, `step ${step + 1}`).toBe(0);
      expect(counts.kernels).toBeGreaterThan(100);
      // The metrics are one read, after the step.
      const read = await countKernels(() => result.read());
      expect(read.counts.readbacks).toBe(1);
      expect(Number.isFinite(read.result.loss) && read.result.gradNorm > 0).toBe(true);
    }
    batches.forEach(disposeBatch);
    bank.dispose();
    opt.dispose();
    ps.dispose();
  });

  it('AdamW with clipping: no read-back, a bounded number of kernels however many parameters', async () => {
    await selectBackend(backend);
    const ps = new ParamStore(3);
    defineSmke(ps, TINY);
    const names = ps.trainableNames();
    const opt = new AdamW(ps);
    const batch = tinyBatch(1);
    const { grads, loss } = lossAndGrads(ps, () => ({ loss: smkeLoss(ps, TINY, batch.images, batch.text, batch.teacher, null).total }));
    const { result: norm, counts } = await countKernels(() => opt.apply(grads, 1e-3, 1));
    expect(counts.readbacks).toBe(0);
    // Per group: a concat of gradients and one of values, ~15 elementwise kernels, one split;
    // per parameter only view reshapes. The per-parameter loop ran ~15 kernels per parameter.
    const notReshape = counts.kernels - (counts.byName.get('Reshape') ?? 0);
    expect(grads.size).toBe(names.length);
    expect(notReshape).toBeLessThan(60);
    expect(norm!.dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([norm!, loss, ...grads.values()]);
    disposeBatch(batch);
    opt.dispose();
    ps.dispose();
  });
});
