// Rebuilding models from checkpoint directories, and assembling S-SMKE from
// the pretrained unimodal checkpoints it leverages (truncated to N layers).

import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { ParamStore } from './params.js';
import { readCheckpoint, type CheckpointConfig } from './checkpoint.js';
import { defineVit, type VitConfig } from './vit.js';
import { defineText, type TextConfig } from './text.js';
import { defineSmke, type SmkeConfig } from './smke.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { isHfBert, readHfBert } from './import-hf.js';

export const VOCAB_FILE = 'vocab.txt';

export interface VitCheckpoint extends CheckpointConfig {
  model: 'vit';
  vit: VitConfig;
}
export interface TextCheckpoint extends CheckpointConfig {
  model: 'text';
  text: TextConfig;
}
export interface SmkeCheckpoint extends CheckpointConfig {
  model: 's_smke';
  smke: SmkeConfig;
}
export type AnyCheckpoint = VitCheckpoint | TextCheckpoint | SmkeCheckpoint;

/** A smke checkpoint directory, or a Hugging Face BERT one read as a text encoder. */
async function readAny(dir: string): Promise<{ config: AnyCheckpoint; tensors: Map<string, { shape: number[]; data: Float32Array }> }> {
  if (await isHfBert(dir)) {
    const { text, tensors } = await readHfBert(dir);
    return { config: { model: 'text', text, imported_from: 'huggingface bert' }, tensors };
  }
  return readCheckpoint<AnyCheckpoint>(dir);
}

/** Loads a checkpoint directory into a fresh store with the architecture its config names. */
export async function loadModel(dir: string, seed = 0): Promise<{ ps: ParamStore; config: AnyCheckpoint }> {
  const { config, tensors } = await readAny(dir);
  const ps = new ParamStore(seed);
  if (config.model === 'vit') defineVit(ps, 'image', config.vit);
  else if (config.model === 'text') defineText(ps, 'text', config.text);
  else if (config.model === 's_smke') defineSmke(ps, config.smke);
  else throw new Error(`${dir}: unknown model '${(config as CheckpointConfig).model}'`);
  const loaded = ps.load(tensors);
  const missing = ps.names().filter((n) => !loaded.includes(n));
  if (missing.length) throw new Error(`${dir}: checkpoint lacks ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`);
  return { ps, config };
}

export async function loadTokenizer(dir: string): Promise<WordPieceTokenizer> {
  const path = join(dir, VOCAB_FILE);
  try {
    await access(path);
  } catch {
    throw new Error(`${dir} has no ${VOCAB_FILE}: point this at a text model checkpoint (train.mlm or train.s_smke output)`);
  }
  return WordPieceTokenizer.fromVocabFile(path);
}

/**
 * S-SMKE initialised from pretrained unimodal encoders: their first `layers`
 * blocks (and embeddings) are copied; the token-type embedding, shared block
 * and KD head start fresh. The unimodal configs define the widths.
 */
export async function smkeFromUnimodal(
  imageDir: string,
  textDir: string,
  opts: { layers: number; sharedHeads: number; sharedMlpRatio: number; teacherDim: number; seed: number; random?: boolean },
): Promise<{ ps: ParamStore; cfg: SmkeConfig }> {
  const img = await readAny(imageDir);
  const txt = await readAny(textDir);
  if (img.config.model !== 'vit') throw new Error(`${imageDir} holds a '${img.config.model}' checkpoint, an image encoder (vit) is needed`);
  if (txt.config.model !== 'text') throw new Error(`${textDir} holds a '${txt.config.model}' checkpoint, a text encoder is needed`);
  if (opts.layers > img.config.vit.depth || opts.layers > txt.config.text.depth)
    throw new Error(`cannot keep ${opts.layers} layers: the image encoder has ${img.config.vit.depth}, the text encoder ${txt.config.text.depth}`);
  const cfg: SmkeConfig = {
    image: { ...img.config.vit, depth: opts.layers },
    text: { ...txt.config.text, depth: opts.layers },
    sharedHeads: opts.sharedHeads,
    sharedMlpRatio: opts.sharedMlpRatio,
    teacherDim: opts.teacherDim,
  };
  const ps = new ParamStore(opts.seed);
  defineSmke(ps, cfg);
  // `random` is the ablation baseline: same shapes, no pretrained weights.
  if (opts.random) return { ps, cfg };
  // Blocks beyond `layers` have no parameter here and are skipped: that is the truncation.
  ps.load(img.tensors, { from: 'image.', to: 'image.' });
  ps.load(txt.tensors, { from: 'text.', to: 'text.' });
  return { ps, cfg };
}
