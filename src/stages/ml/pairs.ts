// Image-caption pairs for the S-SMKE and retrieval stages: the images of one
// or more image-text datasets decoded once, and every caption pre-tokenised.

import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../data/rng.js';
import type { WordPieceTokenizer, Encoded } from '../../ml/tokenizer.js';
import type { TextBatch } from '../../ml/text.js';
import { imageBatch, loadImageSplit, type ImageSplit } from './images.js';

export interface PairSet {
  images: ImageSplit;
  /** captions[i]: the encoded captions of image i. */
  captions: Encoded[][];
  /** Raw caption strings, same layout. */
  texts: string[][];
}

export async function loadPairs(
  dirs: string[],
  split: string,
  size: number,
  tok: WordPieceTokenizer,
  maxLen: number,
  opts: { limit?: number; signal?: AbortSignal } = {},
): Promise<PairSet> {
  const parts: ImageSplit[] = [];
  for (const d of dirs) parts.push(await loadImageSplit(d, split, size, opts));
  const total = parts.reduce((s, p) => s + p.records.length, 0);
  const pixels = new Uint8Array(total * size * size * 3);
  let off = 0;
  for (const p of parts) {
    pixels.set(p.pixels, off);
    off += p.pixels.length;
  }
  const records = parts.flatMap((p) => p.records);
  const texts = records.map((r) => {
    if (!r.captions?.length) throw new Error(`image ${r.id} has no captions: an image-text dataset is needed`);
    return r.captions;
  });
  return { images: { records, size, pixels, classes: [] }, texts, captions: texts.map((cs) => cs.map((c) => tok.encode(c, undefined, maxLen))) };
}

export function textTensors(enc: Encoded[]): TextBatch {
  const t = enc[0]!.ids.length;
  return {
    ids: tf.tensor2d(
      enc.flatMap((e) => e.ids),
      [enc.length, t],
      'int32',
    ),
    mask: tf.tensor2d(
      enc.flatMap((e) => e.mask),
      [enc.length, t],
      'int32',
    ),
    segments: tf.tensor2d(
      enc.flatMap((e) => e.segments),
      [enc.length, t],
      'int32',
    ),
  };
}

/** Images (augmented when `rng` is given) and one caption each (random with `rng`, else the first). */
export function pairBatch(set: PairSet, idx: number[], rng?: Rng): { images: tf.Tensor4D; text: TextBatch } {
  const s = set.images.size;
  const images = tf.tensor4d(imageBatch(set.images, idx, rng), [idx.length, s, s, 3]);
  const enc = idx.map((i) => {
    const caps = set.captions[i]!;
    return caps[rng ? rng.int(caps.length) : 0]!;
  });
  return { images, text: textTensors(enc) };
}
