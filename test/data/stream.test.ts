import { mkdtemp, rm, truncate, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageDatasetWriter } from '../../src/data/image-dataset.js';
import { shardSamples, splitShards, streamBatches, streamSamples, type SplitShards, type StreamBatch } from '../../src/data/stream.js';

let root: string, dir: string, files: string;
const N = 30;

async function png(i: number): Promise<Buffer> {
  const raw = Buffer.alloc(8 * 8 * 3);
  for (let k = 0; k < raw.length; k++) raw[k] = (i * 29 + k * 7) & 255;
  return sharp(raw, { raw: { width: 8, height: 8, channels: 3 } })
    .png()
    .toBuffer();
}

async function write(d: string, storage: 'shards' | 'files'): Promise<void> {
  const w = new ImageDatasetWriter(d, { type: 'image-text', name: 't', source: 'test', shardSize: 10, storage });
  for (let i = 0; i < N + 5; i++)
    await w.add({
      id: `img${i}`,
      split: i < N ? 'train' : 'val',
      data: await png(i),
      ext: 'png',
      width: 8,
      height: 8,
      captions: [`first ${i}`, `second ${i}`, `third ${i}`],
    });
  await w.finish();
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'smke-stream-'));
  dir = join(root, 'shards');
  files = join(root, 'files');
  await write(dir, 'shards');
  await write(files, 'files');
});
afterAll(() => rm(root, { recursive: true, force: true }));

const ids = async (src: SplitShards, o: { seed: number; epoch: number; shuffle: boolean; shuffleBuffer?: number }) => {
  const out: string[] = [];
  for await (const s of streamSamples(src, { split: 'train', ...o })) out.push(s.id);
  return out;
};
const collect = async (it: AsyncIterable<StreamBatch>) => {
  const out: StreamBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
};

describe('streaming image shards', () => {
  it("lists the split's shards from the index, and reads image + sidecar pairs in file order", async () => {
    const src = await splitShards([dir], 'train');
    expect(src.shards.map((s) => s.count)).toEqual([10, 10, 10]);
    expect(src.total).toBe(N);
    const first = [];
    for await (const s of shardSamples(src.shards[0]!.path)) first.push(s);
    expect(first.map((s) => s.id)).toEqual(Array.from({ length: 10 }, (_, i) => `img${i}`));
    expect(first[3]!.captions).toEqual(['first 3', 'second 3', 'third 3']);
    expect(first[3]!.data.equals(await png(3))).toBe(true);
  });

  it('gives every sample once per epoch, in an order fixed by (seed, epoch)', async () => {
    const src = await splitShards([dir], 'train');
    const all = Array.from({ length: N }, (_, i) => `img${i}`);
    expect(await ids(src, { seed: 1, epoch: 0, shuffle: false })).toEqual(all);
    const a = await ids(src, { seed: 1, epoch: 0, shuffle: true, shuffleBuffer: 8 });
    expect([...a].sort()).toEqual([...all].sort());
    expect(await ids(src, { seed: 1, epoch: 0, shuffle: true, shuffleBuffer: 8 })).toEqual(a);
    expect(await ids(src, { seed: 1, epoch: 1, shuffle: true, shuffleBuffer: 8 })).not.toEqual(a);
    expect(await ids(src, { seed: 2, epoch: 0, shuffle: true, shuffleBuffer: 8 })).not.toEqual(a);
    expect(a).not.toEqual(all);
  });

  it('a buffer of one keeps each shard in file order (only the shard order is shuffled): the buffer bounds what is held', async () => {
    const src = await splitShards([dir], 'train');
    const order = await ids(src, { seed: 3, epoch: 0, shuffle: true, shuffleBuffer: 1 });
    const nums = order.map((s) => Number(s.slice(3)));
    for (let k = 0; k < 3; k++) {
      const block = nums.slice(10 * k, 10 * k + 10);
      expect(block).toEqual(Array.from({ length: 10 }, (_, i) => block[0]! + i));
    }
  });

  it('batches: dropLast for training, a short last batch for evaluation; a batch decodes the same whichever batches are decoded', async () => {
    const src = await splitShards([dir], 'train');
    const base = { split: 'train', seed: 5, epoch: 2, shuffle: true, shuffleBuffer: 8, batchSize: 8 };
    const aug = { size: 8, train: true, scale: [0.9, 1] as [number, number], jitter: 0.4 };
    const full = await collect(streamBatches(src, { ...base, augment: aug }));
    expect(full.map((b) => b.size)).toEqual([8, 8, 8]);
    const some = await collect(streamBatches(src, { ...base, augment: aug, decode: (i) => i === 2, prefetch: 1, concurrency: 2 }));
    expect(some.map((b) => b.images === undefined)).toEqual([true, true, false]);
    expect(some[2]!.ids).toEqual(full[2]!.ids);
    expect(some[2]!.images).toEqual(full[2]!.images);
    expect(some[2]!.captions).toEqual(full[2]!.captions);
    for (const [i, c] of full[0]!.captions!.entries()) expect(full[0]!.allCaptions![i]).toContain(c);
    const evalBatches = await collect(streamBatches(src, { ...base, shuffle: false, augment: { size: 8, train: false } }));
    expect(evalBatches.map((b) => b.size)).toEqual([8, 8, 8, 6]);
    expect(evalBatches[0]!.captions![0]).toBe('first 0');
    expect(evalBatches[0]!.images!.every(Number.isFinite)).toBe(true);
  });

  it('bad input: files storage, a missing split, a truncated shard; each says what to do', async () => {
    await expect(splitShards([files], 'train')).rejects.toThrow(/stores its images as files; streaming reads tar shards/);
    await expect(splitShards([dir], 'nope')).rejects.toThrow(/has no split 'nope'/);
    const src = await splitShards([dir], 'train');
    const victim = src.shards[1]!.path;
    await truncate(victim, Math.floor((await stat(victim)).size / 2));
    await expect(ids(src, { seed: 1, epoch: 0, shuffle: false })).rejects.toThrow(/shard .*-000001.tar is damaged .*regenerate the dataset/);
  });
});
