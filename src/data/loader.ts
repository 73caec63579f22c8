// Loaders: deterministic shuffling, batching, augmentation and prefetch over
// the common dataset formats. Batches are plain typed arrays; ./tensor.ts
// turns them into tfjs tensors, so this module never loads tfjs.

import { decodeInto, type AugmentSpec } from './augment.js';
import { orderedMap, prefetch } from './concurrency.js';
import type { ImageRecord } from './format.js';
import type { ImageDataset } from './image-dataset.js';
import { Rng, deriveSeed } from './rng.js';

export interface ImageBatch {
  /** Number of images in this batch (the last one may be short unless dropLast). */
  size: number;
  height: number;
  width: number;
  /** NHWC, normalised floats. */
  images: Float32Array;
  ids: string[];
  /** image-class: labels. */
  labels?: Int32Array;
  /** image-text: one caption per image (random per epoch when training, the first when not). */
  captions?: string[];
  /** image-text: every caption of each image (retrieval evaluation needs all of them). */
  allCaptions?: string[][];
}

export interface ImageLoaderOptions {
  split: string;
  batchSize: number;
  augment: AugmentSpec;
  /** Shuffle the order (default: augment.train). */
  shuffle?: boolean;
  /** Seed of the order, the augmentations and the caption choice. */
  seed: number;
  /** Epoch number: each epoch gets its own order and augmentations, reproducibly. */
  epoch?: number;
  /** Drop a final short batch (default: augment.train). */
  dropLast?: boolean;
  /** Use only the first N records of the split (before shuffling). */
  limit?: number;
  /** Images decoded in parallel (default 6: a little over libuv's 4 threads, so none idles). */
  concurrency?: number;
  /** Finished batches held ahead of the consumer (default 2). */
  prefetch?: number;
  signal?: AbortSignal;
}

/** Indexes 0..n-1 in a seeded order. */
export function permutation(n: number, seed: number, epoch = 0): number[] {
  return new Rng(deriveSeed(seed, 'order', epoch)).shuffle(Array.from({ length: n }, (_, i) => i));
}

/** Generic seeded batching for in-memory examples (text tasks). */
export function* batches<T>(items: readonly T[], batchSize: number, opts: { shuffle: boolean; seed: number; epoch?: number; dropLast?: boolean }): Generator<T[]> {
  const order = opts.shuffle ? permutation(items.length, opts.seed, opts.epoch) : items.map((_, i) => i);
  for (let i = 0; i < order.length; i += batchSize) {
    if (opts.dropLast && i + batchSize > order.length) return;
    yield order.slice(i, i + batchSize).map((k) => items[k]!);
  }
}

/** Number of batches imageBatches will yield for these options. */
export function batchCount(records: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(records / batchSize) : Math.ceil(records / batchSize);
}

export class ImageDecodeError extends Error {
  override name = 'ImageDecodeError';
}

/** Decoded, augmented batches of one split of an image dataset. */
export async function* imageBatches(ds: ImageDataset, opts: ImageLoaderOptions): AsyncGenerator<ImageBatch> {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`imageBatches: batchSize must be a positive integer, got ${opts.batchSize}`);
  let records = await ds.records(opts.split);
  if (opts.limit !== undefined) records = records.slice(0, opts.limit);
  const train = opts.augment.train;
  const epoch = opts.epoch ?? 0;
  const shuffle = opts.shuffle ?? train;
  const dropLast = opts.dropLast ?? train;
  const order = shuffle ? permutation(records.length, opts.seed, epoch) : records.map((_, i) => i);
  const size = opts.augment.size;
  const per = size * size * 3;
  const isClass = ds.type === 'image-class';

  const positions = dropLast ? order.length - (order.length % opts.batchSize) : order.length;
  const buffers = new Map<number, Float32Array>();
  const bufferFor = (b: number): Float32Array => {
    let buf = buffers.get(b);
    if (!buf) buffers.set(b, (buf = new Float32Array(Math.min(opts.batchSize, positions - b * opts.batchSize) * per)));
    return buf;
  };

  async function* produce(): AsyncGenerator<ImageBatch> {
    // One decode window across batch boundaries: the threads never idle at the end of a batch.
    const decoded = orderedMap(order.slice(0, positions), opts.concurrency ?? 6, async (k: number, pos: number) => {
      opts.signal?.throwIfAborted();
      const r = records[k]!;
      const b = Math.floor(pos / opts.batchSize);
      // Per-image seeds: the same image gets the same augmentation in the same epoch, whatever the concurrency.
      const rng = train ? new Rng(deriveSeed(opts.seed, 'aug', epoch, r.id)) : undefined;
      try {
        await decodeInto(await ds.readImage(r), opts.augment, rng, bufferFor(b), (pos - b * opts.batchSize) * per, r);
      } catch (err) {
        throw new ImageDecodeError(`${ds.dir}: image ${r.id} (${r.shard ?? r.path}) could not be decoded: ${(err as Error).message}`);
      }
      return r;
    });
    let recs: ImageRecord[] = [];
    let b = 0;
    for await (const r of decoded) {
      recs.push(r);
      if (recs.length < opts.batchSize && b * opts.batchSize + recs.length < positions) continue;
      const images = bufferFor(b);
      buffers.delete(b);
      const batch: ImageBatch = { size: recs.length, height: size, width: size, images, ids: recs.map((x) => x.id) };
      if (isClass) batch.labels = Int32Array.from(recs, (x) => x.label ?? -1);
      else {
        batch.allCaptions = recs.map((x) => x.captions ?? []);
        batch.captions = recs.map((x) => {
          const caps = x.captions ?? [''];
          return train ? caps[new Rng(deriveSeed(opts.seed, 'caption', epoch, x.id)).int(caps.length)]! : caps[0]!;
        });
      }
      yield batch;
      recs = [];
      b++;
    }
  }

  yield* prefetch(produce(), opts.prefetch ?? 2);
}
