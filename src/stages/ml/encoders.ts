// What the downstream stages compute with a checkpoint, whatever produced it:
// token features of the image or text side, and S-SMKE's retrieval embedding x.

import * as tf from '@tensorflow/tfjs';
import type { AnyCheckpoint } from '../../ml/models.js';
import type { ParamStore } from '../../ml/params.js';
import type { TextBatch } from '../../ml/text.js';
import { textForward } from '../../ml/text.js';
import { vitForward, type VitConfig } from '../../ml/vit.js';
import { smkeImage, smkeText, smkeTextTokens } from '../../ml/smke.js';

export interface Loaded {
  ps: ParamStore;
  config: AnyCheckpoint;
}

export function imageConfig(m: Loaded): VitConfig {
  if (m.config.model === 'vit') return m.config.vit;
  if (m.config.model === 's_smke') return m.config.smke.image;
  throw new Error(`a '${m.config.model}' checkpoint has no image encoder`);
}

export function textMaxLen(m: Loaded): number {
  if (m.config.model === 'text') return m.config.text.maxLen;
  if (m.config.model === 's_smke') return m.config.smke.text.maxLen;
  throw new Error(`a '${m.config.model}' checkpoint has no text encoder`);
}

export function textWidth(m: Loaded): number {
  if (m.config.model === 'text') return m.config.text.dim;
  if (m.config.model === 's_smke') return m.config.smke.text.dim;
  throw new Error(`a '${m.config.model}' checkpoint has no text encoder`);
}

/** Image encoder tokens [B, N+1, D] (CLS first), without a final norm. For S-SMKE: its truncated image encoder. */
export function imageTokens(m: Loaded, images: tf.Tensor): tf.Tensor {
  return vitForward(m.ps, 'image', imageConfig(m), images, { finalNorm: false });
}

/** Text tokens [B, T, D]. For S-SMKE: its text encoder followed by the shared block. */
export function textTokens(m: Loaded, batch: TextBatch): tf.Tensor {
  if (m.config.model === 'text') return textForward(m.ps, 'text', m.config.text, batch);
  if (m.config.model === 's_smke') return smkeTextTokens(m.ps, m.config.smke, batch);
  throw new Error(`a '${m.config.model}' checkpoint has no text encoder`);
}

function smke(m: Loaded) {
  if (m.config.model !== 's_smke') throw new Error(`an S-SMKE checkpoint is needed, got '${m.config.model}'`);
  return m.config.smke;
}

/** Normalised retrieval embeddings x (docs/method.md, "Model": retrieval and zero-shot use x). */
export function imageEmbedding(m: Loaded, images: tf.Tensor): tf.Tensor {
  return smkeImage(m.ps, smke(m), images).x;
}

export function textEmbedding(m: Loaded, batch: TextBatch): tf.Tensor {
  return smkeText(m.ps, smke(m), batch).x;
}
