// Image datasets (image-text pairs and image classification) in the common
// format: dataset.json + index.jsonl + tar shards (or plain files). The
// writer is what every acquisition kind and the synthetic generator use; the
// reader is what the loaders and the ML stages use.

import { closeSync, openSync, readSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import {
  DATASET_FORMAT,
  DATASET_VERSION,
  DatasetFormatError,
  readDescriptor,
  writeDescriptor,
  type ImageDescriptor,
  type ImageRecord,
} from './dataset-format.js';
import { readJsonlAll, writeJsonlAtomic } from './jsonl.js';
import { writeShard, type ShardMember } from './shards.js';

export const INDEX_FILE = 'index.jsonl';

export interface ImageDatasetWriterOptions {
  type: 'image-text' | 'image-class';
  name: string;
  source: string;
  storage?: 'shards' | 'files';
  /** Images per shard (shards storage). */
  shardSize?: number;
  /** Class names by label (image-class). */
  classes?: string[];
}

export interface ImageSample {
  id: string;
  split: string;
  data: Uint8Array;
  ext: 'jpg' | 'png';
  width?: number;
  height?: number;
  captions?: string[];
  label?: number;
}

const SAFE_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,80}$/;
const SAFE_SPLIT = /^[a-z][a-z0-9_]{0,30}$/;

export class ImageDatasetWriter {
  private readonly records: ImageRecord[] = [];
  private readonly pending = new Map<string, { sample: ImageSample; record: ImageRecord }[]>();
  private readonly shardCount = new Map<string, number>();
  private readonly ids = new Set<string>();
  private readonly formats = new Set<string>();
  private readonly sizes = new Set<string>();
  private readonly storage: 'shards' | 'files';
  private readonly shardSize: number;
  private finished = false;

  constructor(
    readonly dir: string,
    private readonly opts: ImageDatasetWriterOptions,
  ) {
    this.storage = opts.storage ?? 'shards';
    this.shardSize = Math.max(1, opts.shardSize ?? 1000);
    if (opts.type === 'image-class' && !opts.classes?.length) throw new Error('an image-class dataset needs class names');
  }

  get count(): number {
    return this.records.length;
  }

  async add(sample: ImageSample): Promise<void> {
    if (this.finished) throw new Error('ImageDatasetWriter: add after finish');
    if (!SAFE_ID.test(sample.id)) throw new Error(`image id ${JSON.stringify(sample.id)} must match ${SAFE_ID}`);
    if (!SAFE_SPLIT.test(sample.split)) throw new Error(`split name ${JSON.stringify(sample.split)} must match ${SAFE_SPLIT}`);
    if (this.ids.has(sample.id)) throw new Error(`duplicate image id ${sample.id}`);
    if (this.opts.type === 'image-class') {
      const n = this.opts.classes!.length;
      if (!Number.isInteger(sample.label) || sample.label! < 0 || sample.label! >= n) {
        throw new Error(`image ${sample.id}: label ${sample.label} is not a class index in [0, ${n})`);
      }
    } else if (!sample.captions?.length) {
      throw new Error(`image ${sample.id}: an image-text record needs at least one caption`);
    }
    this.ids.add(sample.id);
    this.formats.add(sample.ext === 'jpg' ? 'jpeg' : 'png');
    this.sizes.add(`${sample.width ?? '?'}x${sample.height ?? '?'}`);
    const record: ImageRecord = { id: sample.id, split: sample.split, path: `${sample.id}.${sample.ext}` };
    if (sample.width !== undefined) record.width = sample.width;
    if (sample.height !== undefined) record.height = sample.height;
    if (sample.captions) record.captions = sample.captions;
    if (sample.label !== undefined) record.label = sample.label;
    this.records.push(record);

    if (this.storage === 'files') {
      record.path = `images/${sample.split}/${sample.id}.${sample.ext}`;
      const file = join(this.dir, record.path);
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, sample.data);
      return;
    }
    let queue = this.pending.get(sample.split);
    if (!queue) this.pending.set(sample.split, (queue = []));
    queue.push({ sample, record });
    if (queue.length >= this.shardSize) await this.flush(sample.split);
  }

  private async flush(split: string): Promise<void> {
    const queue = this.pending.get(split);
    if (!queue?.length) return;
    this.pending.set(split, []);
    const n = this.shardCount.get(split) ?? 0;
    this.shardCount.set(split, n + 1);
    const shard = `shards/${split}-${String(n).padStart(6, '0')}.tar`;
    const members: ShardMember[] = [];
    for (const { sample } of queue) {
      members.push({ name: `${sample.id}.${sample.ext}`, data: sample.data });
      // The sidecar makes each shard usable by webdataset readers without our index.
      const meta = sample.captions ? { captions: sample.captions } : { label: sample.label, class: this.opts.classes![sample.label!] };
      members.push({ name: `${sample.id}.json`, data: Buffer.from(JSON.stringify(meta)) });
    }
    await mkdir(join(this.dir, 'shards'), { recursive: true });
    const locs = await writeShard(join(this.dir, shard), members);
    queue.forEach(({ record }, i) => {
      const loc = locs[2 * i]!;
      record.shard = shard;
      record.offset = loc.offset;
      record.size = loc.size;
    });
  }

  /** Flush the last shards, then write the index and, last of all, dataset.json (its presence marks a complete dataset). */
  async finish(): Promise<ImageDescriptor> {
    if (this.finished) throw new Error('ImageDatasetWriter: finish called twice');
    this.finished = true;
    for (const split of [...this.pending.keys()]) await this.flush(split);
    await mkdir(this.dir, { recursive: true });
    await writeJsonlAtomic(join(this.dir, INDEX_FILE), this.records);
    const splits: Record<string, number> = {};
    for (const r of this.records) splits[r.split] = (splits[r.split] ?? 0) + 1;
    const image: ImageDescriptor['image'] = { format: this.formats.size === 1 ? ([...this.formats][0] as 'jpeg' | 'png') : 'mixed' };
    if (this.sizes.size === 1) {
      const [w, h] = [...this.sizes][0]!.split('x').map(Number);
      if (Number.isFinite(w) && Number.isFinite(h)) Object.assign(image, { width: w, height: h });
    }
    const d: ImageDescriptor = {
      format: DATASET_FORMAT,
      version: DATASET_VERSION,
      type: this.opts.type,
      name: this.opts.name,
      source: this.opts.source,
      splits,
      index: INDEX_FILE,
      storage: this.storage,
      image,
    };
    if (this.opts.classes) {
      d.classes = this.opts.classes;
      await writeFileAtomic(join(this.dir, 'classes.json'), JSON.stringify(this.opts.classes, null, 1) + '\n');
    }
    await writeDescriptor(this.dir, d);
    return d;
  }
}

/** A read-only view of an image dataset directory. */
export class ImageDataset {
  private cache?: ImageRecord[];

  private constructor(
    readonly dir: string,
    readonly descriptor: ImageDescriptor,
  ) {}

  static async open(dir: string, expect?: 'image-text' | 'image-class'): Promise<ImageDataset> {
    const abs = resolve(dir);
    const d = await readDescriptor<ImageDescriptor>(abs, expect ?? ['image-text', 'image-class']);
    return new ImageDataset(abs, d);
  }

  get type(): 'image-text' | 'image-class' {
    return this.descriptor.type;
  }

  /** Class names by label index (empty for image-text). */
  get classes(): string[] {
    return this.descriptor.classes ?? [];
  }

  get splits(): string[] {
    return Object.keys(this.descriptor.splits);
  }

  /** Records of one split (or all), in index order. */
  async records(split?: string): Promise<ImageRecord[]> {
    this.cache ??= await readJsonlAll<ImageRecord>(join(this.dir, this.descriptor.index));
    if (split === undefined) return this.cache;
    if (!(split in this.descriptor.splits)) {
      throw new DatasetFormatError(`${this.dir} has no split '${split}' (it has: ${this.splits.join(', ')})`);
    }
    return this.cache.filter((r) => r.split === split);
  }

  /** The encoded image bytes of one record. */
  async readImage(rec: ImageRecord): Promise<Buffer> {
    if (rec.shard !== undefined) {
      if (rec.offset === undefined || rec.size === undefined) throw new DatasetFormatError(`${this.dir}: record ${rec.id} has a shard but no offset/size`);
      return this.shardRead(this.inside(rec.shard), rec.offset, rec.size);
    }
    return readFile(this.inside(rec.path));
  }

  /**
   * A positional read, synchronously: an image is a few KB from the page
   * cache, and going through the libuv pool (open, read, close) would queue
   * behind sharp's decodes on the same 4 threads. No descriptor is kept, so
   * a dataset object needs no closing.
   */
  private shardRead(path: string, offset: number, size: number): Buffer {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = readSync(fd, buf, got, size - got, offset + got);
        if (n === 0)
          throw new DatasetFormatError(`${path}: truncated shard (wanted ${size} bytes at offset ${offset}, file ends early); regenerate the dataset`);
        got += n;
      }
      return buf;
    } finally {
      closeSync(fd);
    }
  }

  /** Resolve an index path, refusing one that points outside the dataset (a hand-edited or hostile index). */
  private inside(rel: string): string {
    const p = resolve(this.dir, rel);
    if (!p.startsWith(this.dir + sep)) throw new DatasetFormatError(`${this.dir}: index path ${JSON.stringify(rel)} points outside the dataset`);
    return p;
  }
}

/** Write a small JSON file (used for stats and sidecars); atomic so a kill never leaves half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}
