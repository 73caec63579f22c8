// Counts what a piece of tfjs work costs in host round trips: kernels run
// (each a dispatch on webgpu, a call into the backend on cpu/wasm) and reads
// of tensor values back to the CPU (each a full stall of the GPU queue). The
// engine's own entry points are wrapped for the duration of `f`, so every
// backend is counted the same way. For benchmarks and tests, not for training.

import * as tf from '@tensorflow/tfjs';

export interface KernelCounts {
  /** Kernels run through the engine (tfjs ops, including those inside gradients). */
  kernels: number;
  byName: Map<string, number>;
  /** Reads of tensor values to the CPU: dataSync/arraySync (readSync), data/array (read), readToGPU. */
  readbacks: number;
}

interface EngineInternals {
  runKernel(kernelName: string, ...rest: unknown[]): unknown;
  readSync(dataId: unknown): unknown;
  read(dataId: unknown): unknown;
  readToGPU(dataId: unknown, options?: unknown): unknown;
}

/** Runs `f` and counts the kernels and read-backs it causes (nested calls are not supported). */
export async function countKernels<T>(f: () => T | Promise<T>): Promise<{ result: T; counts: KernelCounts }> {
  const engine = tf.engine() as unknown as EngineInternals;
  const counts: KernelCounts = { kernels: 0, byName: new Map(), readbacks: 0 };
  const saved = { runKernel: engine.runKernel, readSync: engine.readSync, read: engine.read, readToGPU: engine.readToGPU };
  // Own properties shadow the prototype's methods; deleting them restores the originals.
  engine.runKernel = function (kernelName: string, ...rest: unknown[]) {
    counts.kernels++;
    counts.byName.set(kernelName, (counts.byName.get(kernelName) ?? 0) + 1);
    return saved.runKernel.call(this, kernelName, ...rest);
  };
  for (const m of ['readSync', 'read', 'readToGPU'] as const) {
    const original = saved[m] as (...a: unknown[]) => unknown;
    (engine as unknown as Record<string, unknown>)[m] = function (this: unknown, ...a: unknown[]) {
      counts.readbacks++;
      return original.apply(this, a);
    };
  }
  try {
    const result = await f();
    return { result, counts };
  } finally {
    for (const m of ['runKernel', 'readSync', 'read', 'readToGPU'] as const) delete (engine as unknown as Record<string, unknown>)[m];
  }
}
