// Training micro-batches read from tar shards as a stream (src/data/stream.ts)
// for the ML stages, with `data = "stream"`: micro-batch j of a run is batch
// j mod E of epoch floor(j / E) (E full batches per epoch), whatever the rank
// or the step a resumed run starts from. Batches are requested in increasing
// j; those this rank does not compute (another rank's share, steps done
// before a resume) pass by without being decoded.

import type { AugmentSpec } from '../../data/augment.js';
import { splitShards, streamBatches, type SplitShards, type StreamBatch } from '../../data/stream.js';
import { concatFloats } from './loop.js';

export interface MicroStreamOptions {
  split: string;
  batchSize: number;
  seed: number;
  augment: AugmentSpec;
  /** Does this rank compute micro-batch j? */
  mine(j: number): boolean;
  /** The first micro-batch to decode (a resume's first). */
  from: number;
  shuffleBuffer?: number;
  signal?: AbortSignal;
}

export class MicroStream {
  private epoch = -1;
  private it: AsyncGenerator<StreamBatch> | undefined;
  private constructor(
    readonly source: SplitShards,
    readonly perEpoch: number,
    private readonly o: MicroStreamOptions,
  ) {}

  static async open(dirs: string[], o: MicroStreamOptions): Promise<MicroStream> {
    const source = await splitShards(dirs, o.split);
    const perEpoch = Math.floor(source.total / o.batchSize);
    if (perEpoch < 1) throw new Error(`batch_size ${o.batchSize} exceeds the ${source.total} '${o.split}' images`);
    return new MicroStream(source, perEpoch, o);
  }

  /** Micro-batch `j` (decoded); calls must ask for increasing j. */
  async get(j: number): Promise<StreamBatch> {
    const epoch = Math.floor(j / this.perEpoch),
      index = j % this.perEpoch;
    if (epoch !== this.epoch) {
      await this.it?.return(undefined);
      this.epoch = epoch;
      const base = epoch * this.perEpoch;
      this.it = streamBatches(this.source, {
        split: this.o.split,
        seed: this.o.seed,
        epoch,
        shuffle: true,
        dropLast: true,
        batchSize: this.o.batchSize,
        augment: this.o.augment,
        decode: (i) => base + i >= this.o.from && this.o.mine(base + i),
        ...(this.o.shuffleBuffer !== undefined ? { shuffleBuffer: this.o.shuffleBuffer } : {}),
        ...(this.o.signal ? { signal: this.o.signal } : {}),
      });
    }
    for (;;) {
      const r = await this.it!.next();
      if (r.done)
        throw new Error(
          `the '${this.o.split}' stream ended before batch ${index} of epoch ${epoch}: the shards hold fewer images than the index lists; regenerate the dataset`,
        );
      if (r.value.index < index) continue;
      if (r.value.index > index || !r.value.images) throw new Error(`micro-batch ${j} was requested out of order or was not decoded for this rank`);
      return r.value;
    }
  }

  async close(): Promise<void> {
    await this.it?.return(undefined);
  }
}

/** The S-SMKE augmentation (docs/method.md, "Optimisation"): RandomResizedCrop with scale 0.9-1, flip, ColorJitter 0.4. */
export const trainAugment = (size: number): AugmentSpec => ({ size, train: true, scale: [0.9, 1], jitter: 0.4 });

/** One training batch per step for a single-rank loop (finetuning): `prepare(step)` fetches, `batch` holds it. */
export async function stepStream(dirs: string[], batchSize: number, seed: number, size: number, signal?: AbortSignal) {
  const s = await MicroStream.open(dirs, {
    split: 'train',
    batchSize,
    seed,
    augment: trainAugment(size),
    mine: () => true,
    from: 0,
    ...(signal ? { signal } : {}),
  });
  let current: StreamBatch | undefined;
  return {
    stream: s,
    prepare: async (step: number) => void (current = await s.get(step)),
    get batch(): StreamBatch {
      if (!current) throw new Error('stepStream: prepare(step) was not awaited before the loss');
      return current;
    },
    close: () => s.close(),
  };
}

/**
 * Evaluation over a whole split, streamed in index order and decoded ahead: `f` maps one batch of
 * normalised NHWC images to rows (run in a tidy scope); the rows and each image's id and label (image-class)
 * or captions (image-text) come back, in index order.
 */
export async function streamEvaluate(
  dirs: string[],
  split: string,
  size: number,
  batchSize: number,
  f: (images: Float32Array, n: number) => import('@tensorflow/tfjs').Tensor,
  signal?: AbortSignal,
): Promise<{ data: Float32Array; cols: number; rows: number; labels: number[]; ids: string[]; captions: string[][] }> {
  const tf = await import('@tensorflow/tfjs');
  const source = await splitShards(dirs, split);
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  const ids: string[] = [];
  const captions: string[][] = [];
  let cols = 0,
    seen = 0;
  for await (const b of streamBatches(source, {
    split,
    seed: 0,
    epoch: 0,
    shuffle: false,
    batchSize,
    augment: { size, train: false },
    ...(signal ? { signal } : {}),
  })) {
    const t = tf.tidy(() => f(b.images!, b.size));
    cols = t.shape[t.rank - 1] ?? 1;
    parts.push((await t.data()) as Float32Array);
    t.dispose();
    if (b.labels) labels.push(...b.labels);
    if (b.allCaptions) captions.push(...b.allCaptions);
    ids.push(...b.ids);
    seen += b.size;
  }
  if (seen !== source.total) throw new Error(`the '${split}' shards hold ${seen} images, the index lists ${source.total}; regenerate the dataset`);
  const data = concatFloats(parts);
  return { data, cols, rows: source.total, labels, ids, captions };
}
