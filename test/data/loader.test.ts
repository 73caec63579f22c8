import { rmSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IMAGENET_MEAN, IMAGENET_STD, normalise, randomResizedCrop } from '../../src/data/augment.js';
import { prefetch } from '../../src/data/concurrency.js';
import { headerDims } from '../../src/data/image-header.js';
import { ImageDataset, ImageDatasetWriter } from '../../src/data/image-dataset.js';
import { ImageDecodeError, batchCount, batches, imageBatches, permutation, type ImageBatch } from '../../src/data/loader.js';
import { Rng } from '../../src/data/rng.js';
import { toTensor } from '../../src/data/tensor.js';
import { tempDir } from './ctx.js';

const root = tempDir();
let pairs: ImageDataset;
let cls: ImageDataset;

/** 80x60: left half black, right half a colour, so flips and colours are visible in the output. */
async function halfImage(color: [number, number, number]): Promise<Buffer> {
  const left = await sharp({ create: { width: 40, height: 60, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .png()
    .toBuffer();
  return sharp({ create: { width: 80, height: 60, channels: 3, background: { r: color[0], g: color[1], b: color[2] } } })
    .composite([{ input: left, left: 0, top: 0 }])
    .png()
    .toBuffer();
}

async function collect(it: AsyncIterable<ImageBatch>): Promise<ImageBatch[]> {
  const out: ImageBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

beforeAll(async () => {
  const w = new ImageDatasetWriter(`${root}/pairs`, { type: 'image-text', name: 'p', source: 'test', shardSize: 4 });
  for (let i = 0; i < 10; i++) {
    await w.add({ id: `p${i}`, split: 'train', data: await halfImage([255, i * 20, 0]), ext: 'png', captions: [`cap ${i} a`, `cap ${i} b`, `cap ${i} c`] });
  }
  await w.add({
    id: 'solid',
    split: 'test',
    data: await sharp({ create: { width: 50, height: 50, channels: 3, background: { r: 255, g: 0, b: 0 } } })
      .png()
      .toBuffer(),
    ext: 'png',
    captions: ['red'],
  });
  await w.add({
    id: 'grey',
    split: 'test',
    data: await sharp({ create: { width: 50, height: 50, channels: 3, background: { r: 128, g: 128, b: 128 } } })
      .greyscale()
      .jpeg()
      .toBuffer(),
    ext: 'jpg',
    captions: ['grey'],
  });
  await w.add({ id: 'broken', split: 'bad', data: (await halfImage([1, 2, 3])).subarray(0, 100), ext: 'png', captions: ['x'] });
  await w.finish();
  pairs = await ImageDataset.open(`${root}/pairs`);
  const c = new ImageDatasetWriter(`${root}/cls`, { type: 'image-class', name: 'c', source: 'test', classes: ['a', 'b', 'c'] });
  for (let i = 0; i < 7; i++) await c.add({ id: `c${i}`, split: 'train', data: await halfImage([0, 0, 255]), ext: 'png', label: i % 3 });
  await c.finish();
  cls = await ImageDataset.open(`${root}/cls`);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const TRAIN = { size: 32, train: true, scale: [0.5, 1] as [number, number], jitter: 0.4 };

describe('image loader', () => {
  test('training batches are reproducible per (seed, epoch) and differ between epochs', async () => {
    const run = (epoch: number, concurrency: number) =>
      collect(imageBatches(pairs, { split: 'train', batchSize: 4, augment: TRAIN, seed: 3, epoch, concurrency }));
    const a = await run(0, 1);
    const b = await run(0, 4);
    const c = await run(1, 4);
    expect(a.map((x) => x.size)).toEqual([4, 4]); // dropLast while training: 10 -> 2 full batches
    expect(a.map((x) => x.ids)).toEqual(b.map((x) => x.ids));
    expect(Buffer.from(a[0]!.images.buffer).equals(Buffer.from(b[0]!.images.buffer))).toBe(true);
    expect(a.map((x) => x.ids).flat()).not.toEqual(c.map((x) => x.ids).flat());
    expect(a[0]!.images.length).toBe(4 * 32 * 32 * 3);
    for (const [i, id] of a[0]!.ids.entries()) expect(a[0]!.captions![i]).toMatch(new RegExp(`^cap ${id.slice(1)} [abc]$`));
    expect(a[0]!.allCaptions![0]).toHaveLength(3);
  });

  test('augmentation flips some images horizontally and keeps values in the normalised range', async () => {
    const [batch] = await collect(
      imageBatches(pairs, { split: 'train', batchSize: 10, augment: { ...TRAIN, jitter: 0, scale: [1, 1], ratio: [4 / 3, 4 / 3] }, seed: 9 }),
    );
    const px = (b: ImageBatch, n: number, x: number, y: number) => b.images[((n * 32 + y) * 32 + x) * 3]!;
    let flipped = 0;
    for (let n = 0; n < 10; n++) {
      const leftDark = px(batch!, n, 2, 16) < px(batch!, n, 29, 16);
      if (!leftDark) flipped++;
    }
    expect(flipped).toBeGreaterThan(0);
    expect(flipped).toBeLessThan(10);
    const min = -IMAGENET_MEAN[0] / IMAGENET_STD[0];
    for (const v of batch!.images) expect(v).toBeGreaterThanOrEqual(-2.2);
    expect(Math.min(...batch!.images.subarray(0, 3000))).toBeCloseTo(min, 1);
  });

  test('colour jitter changes colours but keeps a grey image grey (saturation acts on colour only)', async () => {
    const spec = { size: 16, train: true, scale: [1, 1] as [number, number], ratio: [1, 1] as [number, number], flip: 0 };
    const plain = (await collect(imageBatches(pairs, { split: 'test', batchSize: 2, augment: spec, seed: 4, dropLast: false, shuffle: false })))[0]!;
    const jit = (
      await collect(imageBatches(pairs, { split: 'test', batchSize: 2, augment: { ...spec, jitter: 0.4 }, seed: 4, dropLast: false, shuffle: false }))
    )[0]!;
    const px = (b: ImageBatch, n: number) => [0, 1, 2].map((c) => b.images[n * 16 * 16 * 3 + (8 * 16 + 8) * 3 + c]! * IMAGENET_STD[c]! + IMAGENET_MEAN[c]!);
    expect(px(jit, 0)).not.toEqual(px(plain, 0));
    const [r, g, b] = px(jit, 1);
    expect(g).toBeCloseTo(r!, 4);
    expect(b).toBeCloseTo(r!, 4);
    for (const v of jit.images) expect(Number.isFinite(v)).toBe(true);
  });

  test('evaluation: no shuffle, resize + centre crop, exact normalisation, grey images become RGB, short last batch kept', async () => {
    const out = await collect(imageBatches(pairs, { split: 'test', batchSize: 4, augment: { size: 16, train: false }, seed: 1 }));
    expect(out).toHaveLength(1);
    const b = out[0]!;
    expect(b.ids).toEqual(['solid', 'grey']);
    expect(b.captions).toEqual(['red', 'grey']);
    const expectRed = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225];
    for (let c = 0; c < 3; c++) expect(b.images[(8 * 16 + 8) * 3 + c]).toBeCloseTo(expectRed[c]!, 2);
    const off = 16 * 16 * 3;
    const g = [0, 1, 2].map((c) => b.images[off + (8 * 16 + 8) * 3 + c]! * IMAGENET_STD[c]! + IMAGENET_MEAN[c]!);
    expect(g[0]).toBeCloseTo(128 / 255, 1);
    expect(g[1]).toBeCloseTo(g[0]!, 2);
    expect(g[2]).toBeCloseTo(g[0]!, 2);
  });

  test('classification batches carry labels; toTensor makes [n,h,w,3] and [n] tensors', async () => {
    const out = await collect(imageBatches(cls, { split: 'train', batchSize: 3, augment: { size: 8, train: false }, seed: 1 }));
    expect(out.map((b) => b.size)).toEqual([3, 3, 1]);
    expect([...out[0]!.labels!]).toEqual([0, 1, 2]);
    const tf = await import('@tensorflow/tfjs');
    tf.env().set('PROD', true);
    await tf.setBackend('cpu');
    const t = toTensor(tf, out[0]!);
    expect(t.images.shape).toEqual([3, 8, 8, 3]);
    expect(t.labels!.dtype).toBe('int32');
    expect(Array.from(await t.labels!.data())).toEqual([0, 1, 2]);
    expect((await t.images.data())[5]).toBeCloseTo(out[0]!.images[5]!, 5);
    t.images.dispose();
    t.labels!.dispose();
  });

  test('limit takes the first records of the split; a bad batch size is refused', async () => {
    const out = await collect(imageBatches(pairs, { split: 'train', batchSize: 2, augment: { size: 8, train: false }, seed: 1, limit: 3 }));
    expect(out.map((b) => b.ids)).toEqual([['p0', 'p1'], ['p2']]);
    await expect(collect(imageBatches(pairs, { split: 'train', batchSize: 0, augment: { size: 8, train: false }, seed: 1 }))).rejects.toThrow(
      /batchSize must be a positive integer/,
    );
  });

  test('decodes finish in any order but each image lands in its own slot; an early break waits for decodes in flight', async () => {
    const spec = { size: 8, train: false };
    const one = await collect(imageBatches(pairs, { split: 'train', batchSize: 3, augment: spec, seed: 1, concurrency: 1 }));
    const many = await collect(imageBatches(pairs, { split: 'train', batchSize: 3, augment: spec, seed: 1, concurrency: 7 }));
    expect(many.map((b) => b.size)).toEqual([3, 3, 3, 1]);
    expect(many.map((b) => b.ids)).toEqual(one.map((b) => b.ids));
    for (const [i, b] of many.entries()) expect(Buffer.from(b.images.buffer).equals(Buffer.from(one[i]!.images.buffer))).toBe(true);
    for await (const b of imageBatches(pairs, { split: 'train', batchSize: 2, augment: spec, seed: 1, concurrency: 5 })) {
      expect(b.ids).toEqual(['p0', 'p1']);
      break;
    }
  });

  test('a corrupt image fails with the record id and shard, not a bare sharp error', async () => {
    await expect(collect(imageBatches(pairs, { split: 'bad', batchSize: 1, augment: { size: 8, train: false }, seed: 1 }))).rejects.toThrow(ImageDecodeError);
    await expect(collect(imageBatches(pairs, { split: 'bad', batchSize: 1, augment: { size: 8, train: false }, seed: 1 }))).rejects.toThrow(
      /image broken \(shards\/bad-000000.tar\)/,
    );
  });
});

describe('building blocks', () => {
  test('headerDims reads JPEG and PNG sizes as sharp does, and declines what it cannot be sure of', async () => {
    const base = sharp({ create: { width: 37, height: 23, channels: 3, background: { r: 10, g: 200, b: 30 } } });
    const cases: [string, Buffer, { width: number; height: number } | undefined][] = [
      ['baseline jpeg', await base.clone().jpeg().toBuffer(), { width: 37, height: 23 }],
      ['progressive jpeg', await base.clone().jpeg({ progressive: true }).toBuffer(), { width: 37, height: 23 }],
      ['grey jpeg', await base.clone().greyscale().jpeg().toBuffer(), { width: 37, height: 23 }],
      ['jpeg with EXIF orientation 1', await base.clone().withMetadata({ orientation: 1 }).jpeg().toBuffer(), { width: 37, height: 23 }],
      ['jpeg with EXIF orientation 6', await base.clone().withMetadata({ orientation: 6 }).jpeg().toBuffer(), undefined],
      ['png', await base.clone().png().toBuffer(), { width: 37, height: 23 }],
      ['webp', await base.clone().webp().toBuffer(), undefined],
      ['truncated jpeg header', (await base.clone().jpeg().toBuffer()).subarray(0, 40), undefined],
      ['garbage', Buffer.from('not an image at all, really'), undefined],
    ];
    for (const [name, bytes, want] of cases) {
      expect(headerDims(bytes), name).toEqual(want);
      if (want) {
        const meta = await sharp(bytes).metadata();
        expect({ width: meta.width, height: meta.height }, name).toEqual(want);
      }
    }
  });

  test('an EXIF-rotated JPEG without sizes in the index is cropped in its displayed orientation', async () => {
    const dir = `${root}/rot`;
    // Stored 60 wide x 30 high with orientation 6: displayed 30 wide x 60 high, left half black once upright.
    const upright = await sharp({ create: { width: 30, height: 60, channels: 3, background: { r: 255, g: 255, b: 255 } } })
      .composite([
        {
          input: await sharp({ create: { width: 15, height: 60, channels: 3, background: { r: 0, g: 0, b: 0 } } })
            .png()
            .toBuffer(),
          left: 0,
          top: 0,
        },
      ])
      .png()
      .toBuffer();
    const stored = await sharp(upright).rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    expect(headerDims(stored)).toBeUndefined();
    const w = new ImageDatasetWriter(dir, { type: 'image-text', name: 'r', source: 'test' });
    await w.add({ id: 'r0', split: 'train', data: stored, ext: 'jpg', captions: ['x'] });
    await w.finish();
    const ds = await ImageDataset.open(dir);
    const [b] = await collect(
      imageBatches(ds, { split: 'train', batchSize: 1, seed: 1, augment: { size: 16, train: true, scale: [1, 1], ratio: [0.5, 0.5], flip: 0, jitter: 0 } }),
    );
    const px = (x: number, y: number) => b!.images[(y * 16 + x) * 3]!;
    expect(px(2, 8)).toBeLessThan(0); // black, left
    expect(px(13, 8)).toBeGreaterThan(1); // white, right
  });

  test('the one-pass colour jitter and normalisation equal the reference maths, pixel by pixel', () => {
    const mean: [number, number, number] = [0.4, 0.5, 0.6];
    const std: [number, number, number] = [0.2, 0.25, 0.3];
    const grey = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;
    const clamp = (x: number) => Math.min(1, Math.max(0, x));
    /** torchvision's order and formulas as documented in augment.ts, one pixel at a time, in doubles. */
    const reference = (px: number[][], j: { brightness: number; contrast: number; saturation: number } | undefined) => {
      if (!j) return px.map((p) => p.map((v, c) => (v / 255 - mean[c]!) / std[c]!));
      const bright = px.map((p) => p.map((v) => Math.min(1, (v / 255) * j.brightness)));
      const meanGrey = Math.min(1, (px.reduce((s, p) => s + grey(p[0]!, p[1]!, p[2]!), 0) / px.length / 255) * j.brightness);
      const contrast = bright.map((p) => p.map((x) => clamp(Math.fround(clamp(j.contrast * x + (1 - j.contrast) * meanGrey)))));
      return contrast.map((p) => {
        const g = grey(p[0]!, p[1]!, p[2]!);
        return p.map((x, c) => (clamp(j.saturation * x + (1 - j.saturation) * g) - mean[c]!) / std[c]!);
      });
    };
    const rng = new Rng(11);
    const n = 7 * 5;
    for (const channels of [3, 4, 1]) {
      const data = Uint8Array.from({ length: n * channels }, (_, i) => (i % 17 === 0 ? 255 : i % 13 === 0 ? 0 : rng.int(256)));
      const px = Array.from({ length: n }, (_, p) => (channels === 1 ? [0, 0, 0].map(() => data[p]!) : [0, 1, 2].map((c) => data[p * channels + c]!)));
      for (const j of [
        undefined,
        { brightness: 1, contrast: 1, saturation: 1 },
        { brightness: 1.4, contrast: 0.6, saturation: 1.4 },
        { brightness: 0.6, contrast: 1.4, saturation: 0.6 },
      ]) {
        const out = new Float32Array(5 + n * 3).fill(99);
        normalise(data, channels, n, { size: 0, train: true, mean, std }, j, out, 5);
        expect([...out.subarray(0, 5)]).toEqual([99, 99, 99, 99, 99]); // nothing written before the offset
        const want = reference(px, j).flat();
        for (let i = 0; i < want.length; i++)
          expect(Math.abs(out[5 + i]! - want[i]!), `channels ${channels}, jitter ${JSON.stringify(j)}, value ${i}`).toBeLessThan(1e-5);
      }
    }
  });

  test('random resized crops stay inside the image and within the scale range', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 500; i++) {
      // Aspect within the ratio range: then even torchvision's fallback (a centre crop) keeps the whole area.
      const w = 100 + rng.int(400);
      const h = Math.round(w * rng.range(0.76, 1.3));
      const c = randomResizedCrop(w, h, [0.5, 1], [3 / 4, 4 / 3], rng);
      expect(c.left).toBeGreaterThanOrEqual(0);
      expect(c.top).toBeGreaterThanOrEqual(0);
      expect(c.left + c.width).toBeLessThanOrEqual(w);
      expect(c.top + c.height).toBeLessThanOrEqual(h);
      expect((c.width * c.height) / (w * h)).toBeGreaterThan(0.45);
    }
    // An extreme panorama falls back to a centre crop of the allowed aspect ratio.
    expect(randomResizedCrop(1000, 10, [0.9, 1], [3 / 4, 4 / 3], rng)).toEqual({ left: 493, top: 0, width: 13, height: 10 });
  });

  test('seeded permutations and text batches', () => {
    const p = permutation(100, 1, 0);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(permutation(100, 1, 0)).toEqual(p);
    expect(permutation(100, 1, 1)).not.toEqual(p);
    const items = Array.from({ length: 10 }, (_, i) => i);
    expect([...batches(items, 4, { shuffle: false, seed: 0 })]).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    expect([...batches(items, 4, { shuffle: true, seed: 0, dropLast: true })].flat()).toHaveLength(8);
    expect([batchCount(10, 4, true), batchCount(10, 4, false), batchCount(8, 4, false)]).toEqual([2, 3, 2]);
  });

  test('prefetch runs ahead of a slow consumer but holds at most depth items', async () => {
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 10; i++) {
        produced++;
        yield i;
      }
    }
    const seen: number[] = [];
    for await (const v of prefetch(source(), 3)) {
      await new Promise((r) => setTimeout(r, 5));
      // Produced counts include the item in hand: never more than depth ahead of it.
      expect(produced - (v + 1)).toBeLessThanOrEqual(3);
      seen.push(v);
      if (v === 0) expect(produced).toBeGreaterThanOrEqual(3);
    }
    expect(seen).toEqual([...Array(10).keys()]);
  });
});
