// A decomposable model for the data-parallel equivalence test: y = xW + b with
// a mean squared error, trained by AdamW. Run in-process by the test and as a
// child process (one per rank) over the Unix-socket group; uses dist/, as a
// child process cannot load the TypeScript sources.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../dist/data/rng.js';
import { ParamStore } from '../../dist/ml/params.js';
import { AdamW, SMKE_ADAMW, lossAndGrads } from '../../dist/ml/optim.js';
import { allReduceGrads } from '../../dist/ml/dp-step.js';
import { rankShare, connectRank } from '../../dist/ml/data-parallel.js';
import { selectBackend } from '../../dist/ml/backend.js';

export const D = 5, K = 3;

/** The global batch of step `step`: B rows of x and y, a function of (seed, step) only. */
export function globalBatch(seed, step, B) {
  const rng = new Rng(seed * 1000 + step);
  return Array.from({ length: B }, () => ({ x: Array.from({ length: D }, () => rng.normal()), y: Array.from({ length: K }, () => rng.normal()) }));
}

/** Trains `steps` steps on this rank's share of each global batch; returns the final parameters. */
export async function linearRun(comm, { seed = 1, steps = 5, B = 8 } = {}) {
  const ps = new ParamStore(seed);
  ps.add('w', [D, K], { kind: 'normal', std: 0.5 });
  ps.add('b', [K], { kind: 'const', value: 0.1 });
  const opt = new AdamW(ps, { ...SMKE_ADAMW, weightDecay: 0.01 });
  for (let step = 0; step < steps; step++) {
    const rows = rankShare(globalBatch(seed, step, B), comm.rank, comm.world);
    const { loss, grads } = lossAndGrads(ps, () => {
      const x = tf.tensor2d(rows.map((r) => r.x));
      const y = tf.tensor2d(rows.map((r) => r.y));
      return { loss: tf.mean(tf.square(tf.sub(tf.add(tf.matMul(x, ps.get('w')), ps.get('b')), y))) };
    });
    loss.dispose();
    const mean = await allReduceGrads(comm, grads);
    opt.apply(mean, 1e-2);
    for (const g of mean.values()) g.dispose();
  }
  const out = { w: Array.from(await ps.get('w').data()), b: Array.from(await ps.get('b').data()) };
  opt.dispose();
  ps.dispose();
  return out;
}

// As a child process: node dp-linear.mjs <socket> <rank> <world> <B> <steps>
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const [path, rank, world, B, steps] = process.argv.slice(2);
  await selectBackend('cpu');
  const comm = await connectRank(path, Number(rank), Number(world));
  await linearRun(comm, { B: Number(B), steps: Number(steps) });
  await comm.close();
}
