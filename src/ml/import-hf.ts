// Reading a Hugging Face BERT checkpoint directory (config.json with
// model_type "bert", model.safetensors, vocab.txt) as smke's text encoder:
// the paper profile starts from bert-base-uncased. HF stores Linear weights
// [out, in] with separate query/key/value; smke stores [in, out] with one
// fused qkv whose columns are [q | k | v], each head-major like HF's.

import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSafetensors } from './safetensors.js';
import type { TextConfig } from './text.js';

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;

interface HfBertConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  layer_norm_eps?: number;
  hidden_act?: string;
}

/** True when `dir` holds a Hugging Face BERT checkpoint rather than a smke one. */
export async function isHfBert(dir: string): Promise<boolean> {
  try {
    const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { model_type?: string; model?: string };
    return c.model === undefined && c.model_type === 'bert';
  } catch {
    return false;
  }
}

/** A row-major [rows, cols] matrix transposed (PyTorch's [out, in] Linear weights to smke's [in, out]). */
export function transpose(t: { shape: number[]; data: Float32Array }): Float32Array {
  const [rows, cols] = t.shape as [number, number];
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c]!;
  return out;
}

/**
 * The text encoder config and tensors (smke names) of an HF BERT directory.
 * Position embeddings are cut to `maxLen` (S-SMKE uses 64 tokens).
 */
export async function readHfBert(dir: string, maxLen = 64): Promise<{ text: TextConfig; tensors: Tensors }> {
  const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as HfBertConfig;
  if (c.hidden_act && c.hidden_act !== 'gelu') throw new Error(`${dir}: activation ${c.hidden_act} is not supported (exact GELU only)`);
  if (c.intermediate_size % c.hidden_size !== 0) throw new Error(`${dir}: intermediate size ${c.intermediate_size} is not a multiple of ${c.hidden_size}`);
  const file = join(dir, 'model.safetensors');
  await access(file).catch(() => {
    throw new Error(`${dir} has no model.safetensors (convert pytorch_model.bin first)`);
  });
  const raw = (await loadSafetensors(file)).tensors;
  const get = (name: string) => {
    for (const key of [
      `bert.${name}`,
      name,
      `bert.${name.replace(/\.weight$/, '.gamma').replace(/\.bias$/, '.beta')}`,
      name.replace(/\.weight$/, '.gamma').replace(/\.bias$/, '.beta'),
    ]) {
      const t = raw.get(key);
      if (t) {
        if (!(t.data instanceof Float32Array)) throw new Error(`${dir}: ${key} is not float32`);
        return t as { shape: number[]; data: Float32Array };
      }
    }
    throw new Error(`${dir}: BERT checkpoint lacks ${name}`);
  };
  const d = c.hidden_size;
  const len = Math.min(maxLen, c.max_position_embeddings);
  const text: TextConfig = {
    vocabSize: c.vocab_size,
    maxLen: len,
    dim: d,
    depth: c.num_hidden_layers,
    heads: c.num_attention_heads,
    mlpRatio: c.intermediate_size / d,
    eps: c.layer_norm_eps ?? 1e-12,
  };
  const out: Tensors = new Map();
  const set = (name: string, shape: number[], data: Float32Array) => out.set(name, { shape, data });
  const vec = (name: string) => get(name).data;
  set('text.word', [c.vocab_size, d], get('embeddings.word_embeddings.weight').data);
  set('text.pos', [len, d], get('embeddings.position_embeddings.weight').data.slice(0, len * d));
  set('text.segment', [2, d], get('embeddings.token_type_embeddings.weight').data.slice(0, 2 * d));
  set('text.embln.g', [d], vec('embeddings.LayerNorm.weight'));
  set('text.embln.b', [d], vec('embeddings.LayerNorm.bias'));
  const linearInto = (to: string, from: string) => {
    const w = get(`${from}.weight`);
    set(`${to}.w`, [w.shape[1]!, w.shape[0]!], transpose(w));
    set(`${to}.b`, [w.shape[0]!], vec(`${from}.bias`));
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const hf = `encoder.layer.${i}`,
      me = `text.blocks.${i}`;
    const [q, k, v] = ['query', 'key', 'value'].map((n) => transpose(get(`${hf}.attention.self.${n}.weight`)));
    const qkv = new Float32Array(d * 3 * d);
    for (let r = 0; r < d; r++) [q, k, v].forEach((m, j) => qkv.set(m!.subarray(r * d, (r + 1) * d), r * 3 * d + j * d));
    set(`${me}.attn.qkv.w`, [d, 3 * d], qkv);
    const qkvB = new Float32Array(3 * d);
    ['query', 'key', 'value'].forEach((n, j) => qkvB.set(vec(`${hf}.attention.self.${n}.bias`), j * d));
    set(`${me}.attn.qkv.b`, [3 * d], qkvB);
    linearInto(`${me}.attn.proj`, `${hf}.attention.output.dense`);
    set(`${me}.ln1.g`, [d], vec(`${hf}.attention.output.LayerNorm.weight`));
    set(`${me}.ln1.b`, [d], vec(`${hf}.attention.output.LayerNorm.bias`));
    linearInto(`${me}.mlp.fc1`, `${hf}.intermediate.dense`);
    linearInto(`${me}.mlp.fc2`, `${hf}.output.dense`);
    set(`${me}.ln2.g`, [d], vec(`${hf}.output.LayerNorm.weight`));
    set(`${me}.ln2.b`, [d], vec(`${hf}.output.LayerNorm.bias`));
  }
  return { text, tensors: out };
}
