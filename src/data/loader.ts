// Loaders: deterministic shuffling, batching, augmentation and prefetch over
// the common dataset formats. Batches are plain typed arrays; ./tensor.ts
// turns them into tfjs tensors, so this module never loads tfjs.

import { decodeInto, type AugmentSpec } from './augment.js';
import { prefetch } from './concurrency.js';
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
  /** Images decoded in parallel, in any order (default 6: a little over libuv's 4 threads, so none idles). */
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
export function* batches<T>(
  items: readonly T[],
  batchSize: number,
  opts: { shuffle: boolean; seed: number; epoch?: number; dropLast?: boolean },
): Generator<T[]> {
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
  const bs = opts.batchSize;
  const nBatches = Math.ceil(positions / bs);
  const limit = Math.max(1, opts.concurrency ?? 6);

  async function* produce(): AsyncGenerator<ImageBatch> {
    // A pool of `limit` decodes that finish in any order, each writing its image into its batch's
    // buffer at its own offset: a slow image does not idle the threads behind it (an in-order
    // window would wait on it), and the output does not depend on which decode ends first.
    // Decodes run at most one batch ahead of the batch being assembled: two buffers, as before.
    const buffers: Float32Array[] = [];
    const left = new Int32Array(nBatches);
    for (let b = 0; b < nBatches; b++) left[b] = Math.min(bs, positions - b * bs);
    let next = 0;
    let inFlight = 0;
    let assembling = 0;
    let stopped = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const decodeAt = async (pos: number): Promise<void> => {
      opts.signal?.throwIfAborted();
      const r = records[order[pos]!]!;
      const b = Math.floor(pos / bs);
      // Per-image seeds: the same image gets the same augmentation in the same epoch, whatever the concurrency.
      const rng = train ? new Rng(deriveSeed(opts.seed, 'aug', epoch, r.id)) : undefined;
      buffers[b] ??= new Float32Array(left[b]! * per);
      try {
        await decodeInto(await ds.readImage(r), opts.augment, rng, buffers[b]!, (pos - b * bs) * per, r);
      } catch (err) {
        throw new ImageDecodeError(`${ds.dir}: image ${r.id} (${r.shard ?? r.path}) could not be decoded: ${(err as Error).message}`);
      }
    };
    const startMore = () => {
      while (!stopped && failure === undefined && inFlight < limit && next < positions && next < (assembling + 2) * bs) {
        const pos = next++;
        inFlight++;
        decodeAt(pos)
          .then(
            () => void left[Math.floor(pos / bs)]!--,
            (err) => void (failure ??= err),
          )
          .finally(() => {
            inFlight--;
            startMore();
            const w = wake;
            wake = undefined;
            w?.();
          });
      }
    };
    try {
      for (let b = 0; b < nBatches; b++) {
        startMore();
        while (left[b]! > 0 && failure === undefined) await new Promise<void>((resolve) => (wake = resolve));
        if (failure !== undefined) throw failure;
        const recs = order.slice(b * bs, Math.min(positions, (b + 1) * bs)).map((k) => records[k]!);
        const images = buffers[b] ?? new Float32Array(0);
        delete buffers[b];
        const batch: ImageBatch = { size: recs.length, height: size, width: size, images, ids: recs.map((x) => x.id) };
        if (isClass) batch.labels = Int32Array.from(recs, (x) => x.label ?? -1);
        else {
          batch.allCaptions = recs.map((x) => x.captions ?? []);
          batch.captions = recs.map((x) => {
            const caps = x.captions ?? [''];
            return train ? caps[new Rng(deriveSeed(opts.seed, 'caption', epoch, x.id)).int(caps.length)]! : caps[0]!;
          });
        }
        // The next batch's decodes (and the one after) go on while the consumer holds this one.
        assembling = b + 1;
        startMore();
        yield batch;
      }
    } finally {
      // Let work already started settle so nothing outlives an early `break` or an error.
      stopped = true;
      while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve));
    }
  }

  yield* prefetch(produce(), opts.prefetch ?? 2);
}
