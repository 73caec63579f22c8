// JSON Schema fragments shared by the ml and eval kinds' descriptors. Light:
// no tfjs here, descriptors are loaded by `smke check` and `smke kinds`.
// Literal-typed (`as const`): a kind's params type is computed from them.

import type { OutputSpec } from '../stage-kind.js';

export const int = (def: number, min = 1, description?: string) => ({
  type: 'integer' as const,
  minimum: min,
  default: def,
  ...(description ? { description } : {}),
});
export const num = (def: number, min = 0, description?: string) => ({
  type: 'number' as const,
  minimum: min,
  default: def,
  ...(description ? { description } : {}),
});
export const path = (description: string) => ({ type: 'string' as const, minLength: 1, description });

export const BACKEND = {
  type: 'string',
  enum: ['', 'tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu', 'tfjs-node', 'tfjs-node-gpu'],
  default: '',
  description: "tfjs backend; '' picks the fastest available (tfjs-node-gpu, webgpu, tfjs-node, wasm, cpu) unless --backend says otherwise.",
} as const;

/** Where training images come from: decoded whole into memory (small sets) or streamed from the shards (any size). */
export const DATA_MODE = {
  type: 'string',
  enum: ['memory', 'stream'],
  default: 'memory',
  description:
    "'memory' decodes the split once into memory (small sets: the mini profile); 'stream' reads the tar shards with a shuffle buffer and decodes ahead, in memory bounded whatever the dataset's size (the paper profile).",
} as const;

export const TRAIN_COMMON = {
  steps: int(300, 1, 'Optimisation steps.'),
  batch_size: int(32, 2, 'Examples per step.'),
  lr: num(1e-3, 0, 'Peak learning rate (cosine schedule with linear warmup).'),
  warmup: { type: 'number', minimum: 0, maximum: 1, default: 0.1, description: 'Fraction of the steps spent in linear warmup.' },
  clip: num(1.0, 0, 'Global gradient-norm clip; 0 disables it.'),
  backend: BACKEND,
} as const;

export const VIT_ARCH = {
  image_size: int(32, 8, 'Side of the (square) input images in pixels.'),
  patch_size: int(8, 1),
  width: int(48, 8),
  depth: int(2, 1),
  heads: int(4, 1),
  mlp_ratio: int(2, 1),
};

export const MODEL_OUT: Record<string, OutputSpec> = {
  model: { type: 'dir', path: 'model', description: 'Checkpoint: model.safetensors + config.json' },
  metrics: { type: 'metrics', path: 'metrics.json', description: 'Final metrics' },
};

export const METRICS_OUT: Record<string, OutputSpec> = {
  metrics: { type: 'metrics', path: 'metrics.json', description: 'Final metrics' },
};

export const TRAIN_RESOURCES = { cpus: 1, memBytes: 2 * 1024 ** 3 };
