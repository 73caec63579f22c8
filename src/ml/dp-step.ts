// The tensor side of data-parallel training: gradients flattened into one
// Float32 buffer for the all-reduce (in a fixed parameter order, so every
// rank packs the same layout), and rows all-gathered across ranks.

import * as tf from '@tensorflow/tfjs';
import type { Communicator } from './data-parallel.js';
import type { Grads } from './optim.js';

/** Replaces each gradient by its mean over the ranks; the input tensors are disposed. */
export async function allReduceGrads(comm: Communicator, grads: Grads): Promise<Grads> {
  if (comm.world === 1) return grads;
  // Sorted names: the layout does not depend on the order the gradients happened to be produced in.
  const names = [...grads.keys()].sort();
  const parts = await Promise.all(names.map(async (n) => (await grads.get(n)!.data()) as Float32Array));
  const flat = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    flat.set(p, off);
    off += p.length;
  }
  const mean = await comm.allReduceMean(flat);
  const out: Grads = new Map();
  off = 0;
  for (const n of names) {
    const g = grads.get(n)!;
    out.set(n, tf.tensor(mean.subarray(off, off + g.size), g.shape, 'float32'));
    off += g.size;
    g.dispose();
  }
  return out;
}

/**
 * Every rank's row blocks, in rank order: `blocks` are this rank's [n_i, D] tensors, the result is the list
 * of all ranks' blocks (rank 0's first), as new tensors the caller owns. Blocks may differ in rows, not in D.
 */
export async function allGatherRows(comm: Communicator, blocks: tf.Tensor2D[]): Promise<tf.Tensor2D[]> {
  if (comm.world === 1) return blocks.map((b) => tf.clone(b));
  const dim = blocks[0]?.shape[1] ?? 0;
  const rows = await comm.allGather(Float32Array.from(blocks, (b) => b.shape[0]));
  const local = new Float32Array(blocks.reduce((s, b) => s + b.size, 0));
  let off = 0;
  for (const b of blocks) {
    if (b.shape[1] !== dim) throw new Error(`allGatherRows: blocks of width ${b.shape[1]} and ${dim}`);
    local.set((await b.data()) as Float32Array, off);
    off += b.size;
  }
  const all = await comm.allGather(local);
  const out: tf.Tensor2D[] = [];
  off = 0;
  for (const r of rows) {
    out.push(tf.tensor2d(all.subarray(off, off + r * dim), [r, dim]));
    off += r * dim;
  }
  if (off !== all.length)
    throw new Error(`allGatherRows: ranks sent blocks of different widths (${all.length} values for ${rows.reduce((a, b) => a + b, 0)} rows of ${dim})`);
  return out;
}
