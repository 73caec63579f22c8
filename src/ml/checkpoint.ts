// A model checkpoint directory: model.safetensors (the parameters) and
// config.json (what architecture they belong to), written atomically.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParamStore } from './params.js';
import { loadSafetensors, saveSafetensors, type NamedTensor } from './safetensors.js';

export const WEIGHTS_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';

export interface CheckpointConfig {
  /** What the weights are: 'vit', 'text', 's_smke', 'text_classifier', ... */
  model: string;
  [key: string]: unknown;
}

export async function saveCheckpoint(dir: string, ps: ParamStore, config: CheckpointConfig, prefix = ''): Promise<void> {
  await saveTensorCheckpoint(dir, (await ps.snapshot(prefix)) as Map<string, NamedTensor>, config);
}

/** The same directory from tensors already keyed by smke's names (imported weights). */
export async function saveTensorCheckpoint(dir: string, tensors: Map<string, NamedTensor>, config: CheckpointConfig): Promise<void> {
  await mkdir(dir, { recursive: true });
  await saveSafetensors(join(dir, WEIGHTS_FILE), tensors, { format: 'smke', model: config.model });
  const tmp = join(dir, `${CONFIG_FILE}.tmp-${process.pid}`);
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n');
  await rename(tmp, join(dir, CONFIG_FILE));
}

export async function readCheckpoint<C extends CheckpointConfig>(
  dir: string,
): Promise<{ config: C; tensors: Map<string, { shape: number[]; data: Float32Array }> }> {
  const config = JSON.parse(await readFile(join(dir, CONFIG_FILE), 'utf8')) as C;
  const { tensors } = await loadSafetensors(join(dir, WEIGHTS_FILE));
  const floats = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of tensors) floats.set(k, { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) });
  return { config, tensors: floats };
}
