// Streaming image datasets at any size: the tar shards of a split are read in
// a seeded shard order, each one front to back (webdataset style: an image and
// its JSON sidecar per key), through a seeded shuffle buffer, and decoded a
// bounded number of batches ahead. Memory is the shuffle buffer (encoded
// bytes), the batches in flight and one tar reader: flat in the dataset's
// size. The index is scanned line by line only to list the split's shards.
// Order, augmentation and caption choice are functions of (seed, epoch, id):
// the same on every run, every rank and after a resume.

import { join } from 'node:path';
import { decodeInto, type AugmentSpec } from './augment.js';
import { prefetch } from './concurrency.js';
import { readDescriptor, type ImageDescriptor, type ImageRecord } from './dataset-format.js';
import { readJsonl } from './jsonl.js';
import { Rng, deriveSeed } from './rng.js';
import { tarFiles } from './tar-read.js';
import { ArchiveError } from './extract.js';
import { permutation, ImageDecodeError } from './loader.js';

export interface SplitShards {
  type: 'image-text' | 'image-class';
  /** Absolute shard paths in index order, with the split's records in each. */
  shards: { path: string; count: number }[];
  total: number;
}

/** The shards holding `split` of each dataset in `dirs` (streams the index: memory is per shard, not per record). */
export async function splitShards(dirs: string[], split: string): Promise<SplitShards> {
  const shards: SplitShards['shards'] = [];
  let type: SplitShards['type'] | undefined;
  for (const dir of dirs) {
    const d = await readDescriptor<ImageDescriptor>(dir, ['image-text', 'image-class']);
    if (type && d.type !== type) throw new Error(`${dir} is an ${d.type} dataset, the others ${type}: stream datasets of one type together`);
    type = d.type;
    if (!(split in d.splits)) throw new Error(`${dir} has no split '${split}' (it has: ${Object.keys(d.splits).join(', ')})`);
    if (d.storage !== 'shards')
      throw new Error(`${dir} stores its images as files; streaming reads tar shards: regenerate it with shards storage, or use the in-memory path`);
    const at = new Map<string, number>();
    for await (const r of readJsonl<ImageRecord>(join(dir, d.index))) {
      if (r.split !== split) continue;
      if (!r.shard) throw new Error(`${dir}: record ${r.id} has no shard; the index does not match its shards storage`);
      let k = at.get(r.shard);
      if (k === undefined) {
        at.set(r.shard, (k = shards.length));
        shards.push({ path: join(dir, r.shard), count: 0 });
      }
      shards[k]!.count++;
    }
  }
  return { type: type ?? 'image-text', shards, total: shards.reduce((s, x) => s + x.count, 0) };
}

export interface StreamSample {
  id: string;
  data: Buffer;
  captions?: string[];
  label?: number;
}

/** The samples of one shard in file order: each image member followed by its `<id>.json` sidecar. */
export async function* shardSamples(path: string): AsyncGenerator<StreamSample> {
  let pending: { id: string; data: Buffer } | undefined;
  const files = async function* () {
    try {
      yield* tarFiles(path);
    } catch (err) {
      if (err instanceof ArchiveError) throw new Error(`shard ${path} is damaged (${err.message}); regenerate the dataset (rerun the stage that wrote it)`);
      throw err;
    }
  };
  for await (const f of files()) {
    const dot = f.name.lastIndexOf('.');
    const id = f.name.slice(0, dot),
      ext = f.name.slice(dot + 1);
    if (ext !== 'json') {
      if (pending) throw new Error(`${path}: image ${pending.id} has no ${pending.id}.json sidecar; the shard is not a smke shard or is damaged`);
      pending = { id, data: f.data };
      continue;
    }
    if (!pending || pending.id !== id) throw new Error(`${path}: sidecar ${f.name} does not follow its image; the shard is not a smke shard or is damaged`);
    const meta = JSON.parse(f.data.toString('utf8')) as { captions?: string[]; label?: number };
    yield { ...pending, ...(meta.captions ? { captions: meta.captions } : {}), ...(meta.label !== undefined ? { label: meta.label } : {}) };
    pending = undefined;
  }
  if (pending) throw new Error(`${path}: image ${pending.id} has no sidecar (truncated shard); regenerate the dataset`);
}

export interface StreamOptions {
  split: string;
  seed: number;
  epoch: number;
  /** Shuffle shard order and samples (training); false reads in index order. */
  shuffle: boolean;
  /** Samples held for shuffling (encoded bytes; default 1024). */
  shuffleBuffer?: number;
  signal?: AbortSignal;
}

/** Every sample of the split once, in the (seed, epoch) order. */
export async function* streamSamples(source: SplitShards, opts: StreamOptions): AsyncGenerator<StreamSample> {
  const order = opts.shuffle ? permutation(source.shards.length, opts.seed, opts.epoch) : source.shards.map((_, i) => i);
  const cap = opts.shuffle ? Math.max(1, opts.shuffleBuffer ?? 1024) : 0;
  const rng = new Rng(deriveSeed(opts.seed, 'stream', opts.epoch));
  const buffer: StreamSample[] = [];
  for (const k of order) {
    for await (const s of shardSamples(source.shards[k]!.path)) {
      opts.signal?.throwIfAborted();
      if (cap === 0) {
        yield s;
        continue;
      }
      // A full buffer hands out a random resident and takes the newcomer in its place.
      if (buffer.length < cap) {
        buffer.push(s);
        continue;
      }
      const j = rng.int(cap);
      const out = buffer[j]!;
      buffer[j] = s;
      yield out;
    }
  }
  while (buffer.length) {
    const j = rng.int(buffer.length);
    const out = buffer[j]!;
    buffer[j] = buffer[buffer.length - 1]!;
    buffer.pop();
    yield out;
  }
}

export interface StreamBatch {
  /** Position of the batch in the epoch (0-based). */
  index: number;
  ids: string[];
  /** NHWC normalised floats; absent for a batch the caller chose not to decode. */
  images?: Float32Array;
  size: number;
  /** One caption per image (random per epoch when training, else the first). */
  captions?: string[];
  allCaptions?: string[][];
  labels?: Int32Array;
}

export interface StreamBatchOptions extends StreamOptions {
  batchSize: number;
  augment: AugmentSpec;
  /** Drop a final short batch (default: augment.train). */
  dropLast?: boolean;
  /** Which batches to decode (default all): ranks decode their share, a resume skips what it has done. */
  decode?: (index: number) => boolean;
  /** Images decoded at once within a batch (default 6). */
  concurrency?: number;
  /** Decoded batches held ahead of the consumer (default 2). */
  prefetch?: number;
}

/** Batches of the (seed, epoch) stream, decoded and augmented `prefetch` batches ahead of the consumer. */
export async function* streamBatches(source: SplitShards, opts: StreamBatchOptions): AsyncGenerator<StreamBatch> {
  const bs = opts.batchSize;
  if (!Number.isInteger(bs) || bs < 1) throw new Error(`streamBatches: batchSize must be a positive integer, got ${bs}`);
  const train = opts.augment.train;
  const dropLast = opts.dropLast ?? train;
  const size = opts.augment.size,
    per = size * size * 3;
  const limit = Math.max(1, opts.concurrency ?? 6);

  async function build(index: number, samples: StreamSample[]): Promise<StreamBatch> {
    const batch: StreamBatch = { index, ids: samples.map((s) => s.id), size: samples.length };
    if (source.type === 'image-class') batch.labels = Int32Array.from(samples, (s) => s.label ?? -1);
    else {
      batch.allCaptions = samples.map((s) => s.captions ?? []);
      batch.captions = samples.map((s) => {
        const caps = s.captions?.length ? s.captions : [''];
        return train ? caps[new Rng(deriveSeed(opts.seed, 'caption', opts.epoch, s.id)).int(caps.length)]! : caps[0]!;
      });
    }
    if (opts.decode && !opts.decode(index)) return batch;
    const images = new Float32Array(samples.length * per);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < samples.length; i = next++) {
        const s = samples[i]!;
        // Per-image seeds: the augmentation of an image depends on (seed, epoch, id) only.
        const rng = train ? new Rng(deriveSeed(opts.seed, 'aug', opts.epoch, s.id)) : undefined;
        try {
          await decodeInto(s.data, opts.augment, rng, images, i * per);
        } catch (err) {
          throw new ImageDecodeError(`image ${s.id} could not be decoded: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, samples.length) }, worker));
    batch.images = images;
    return batch;
  }

  async function* produce(): AsyncGenerator<StreamBatch> {
    let group: StreamSample[] = [];
    let index = 0;
    for await (const s of streamSamples(source, opts)) {
      group.push(s);
      if (group.length === bs) {
        yield await build(index++, group);
        group = [];
      }
    }
    if (group.length && !dropLast) yield await build(index, group);
  }

  yield* prefetch(produce(), opts.prefetch ?? 2);
}
