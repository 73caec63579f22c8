// Image batches for the ml stages: decodes a split of an image dataset once
// into normalised float pixels at the model's size, then assembles augmented
// batches from memory (the mini images are tiny; decoding every step would
// cost more than the training step).

import sharp from 'sharp';
import { ImageDataset } from '../../data/image-dataset.js';
import type { ImageRecord } from '../../data/format.js';
import type { Rng } from '../../data/rng.js';
import { IMAGENET_MEAN as MEAN, IMAGENET_STD as STD } from '../../data/augment.js';
import { permutation } from '../../data/loader.js';

export interface ImageSplit {
  records: ImageRecord[];
  size: number;
  /** [N, size, size, 3], ImageNet mean/std normalised. */
  pixels: Float32Array;
  classes: string[];
}

export async function loadImageSplit(dir: string, split: string, size: number, opts: { limit?: number; signal?: AbortSignal } = {}): Promise<ImageSplit> {
  const ds = await ImageDataset.open(dir);
  let records = await ds.records(split);
  if (opts.limit !== undefined && opts.limit > 0) records = records.slice(0, opts.limit);
  const per = size * size * 3;
  const pixels = new Float32Array(records.length * per);
  const inFlight = 8;
  for (let i = 0; i < records.length; i += inFlight) {
    opts.signal?.throwIfAborted();
    const chunk = records.slice(i, i + inFlight);
    const raws = await Promise.all(
      chunk.map(async (r) =>
        sharp(await ds.readImage(r))
          .removeAlpha()
          .toColourspace('srgb')
          .resize(size, size, { fit: 'fill', kernel: 'cubic' })
          .raw()
          .toBuffer(),
      ),
    );
    raws.forEach((raw, k) => {
      const off = (i + k) * per;
      for (let p = 0; p < per; p++) pixels[off + p] = (raw[p]! / 255 - MEAN[p % 3]!) / STD[p % 3]!;
    });
  }
  return { records, size, pixels, classes: ds.classes };
}

/**
 * ColorJitter(0.4) as torchvision applies it to [0, 1] pixels (brightness,
 * contrast, saturation factors in [0.6, 1.4], results clamped), done on
 * normalised pixels by undoing and redoing the normalisation.
 */
export function colorJitter(px: Float32Array, strength: number, rng: Rng): void {
  const f = () => 1 - strength + 2 * strength * rng.next();
  const bright = f(), contrast = f(), sat = f();
  const n = px.length / 3;
  const rgb = new Float32Array(px.length);
  let meanGray = 0;
  for (let i = 0; i < px.length; i++) rgb[i] = Math.min(1, Math.max(0, (px[i]! * STD[i % 3]! + MEAN[i % 3]!) * bright));
  const gray = (i: number) => 0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!;
  for (let i = 0; i < n; i++) meanGray += gray(i) / n;
  for (let i = 0; i < px.length; i++) rgb[i] = Math.min(1, Math.max(0, (rgb[i]! - meanGray) * contrast + meanGray));
  for (let i = 0; i < n; i++) {
    const g = gray(i);
    for (let c = 0; c < 3; c++) {
      const v = Math.min(1, Math.max(0, g + (rgb[3 * i + c]! - g) * sat));
      px[3 * i + c] = (v - MEAN[c]!) / STD[c]!;
    }
  }
}

/**
 * Pixels of the chosen images as one [B, size, size, 3] array. With `rng`
 * (training) each image gets the reference's augmentation: a random resized
 * crop (scale 0.9-1, bilinear), a random horizontal flip and ColorJitter(`jitter`).
 */
export function imageBatch(split: ImageSplit, idx: number[], rng?: Rng, jitter = 0.4): Float32Array {
  const s = split.size, per = s * s * 3;
  const out = new Float32Array(idx.length * per);
  idx.forEach((n, b) => {
    const src = split.pixels.subarray(n * per, (n + 1) * per);
    const dst = out.subarray(b * per, (b + 1) * per);
    if (!rng) {
      dst.set(src);
      return;
    }
    const side = s * Math.sqrt(0.9 + 0.1 * rng.next());
    const x0 = rng.next() * (s - side), y0 = rng.next() * (s - side);
    const flip = rng.chance(0.5);
    const step = side / s;
    for (let y = 0; y < s; y++) {
      const sy = Math.min(s - 1, y0 + (y + 0.5) * step - 0.5);
      const iy = Math.max(0, Math.floor(sy)), fy = Math.max(0, sy - iy), iy1 = Math.min(s - 1, iy + 1);
      for (let x = 0; x < s; x++) {
        const xx = flip ? s - 1 - x : x;
        const sx = Math.min(s - 1, x0 + (xx + 0.5) * step - 0.5);
        const ix = Math.max(0, Math.floor(sx)), fx = Math.max(0, sx - ix), ix1 = Math.min(s - 1, ix + 1);
        for (let c = 0; c < 3; c++) {
          const v00 = src[(iy * s + ix) * 3 + c]!, v01 = src[(iy * s + ix1) * 3 + c]!;
          const v10 = src[(iy1 * s + ix) * 3 + c]!, v11 = src[(iy1 * s + ix1) * 3 + c]!;
          dst[(y * s + x) * 3 + c] = (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy;
        }
      }
    }
    if (jitter > 0) colorJitter(dst, jitter, rng);
  });
  return out;
}

/** Index batches over `n` items: a fresh seeded permutation per epoch, so step k is the same batch on rerun. */
export function epochBatches(n: number, batch: number, seed: number): (step: number) => number[] {
  const perEpoch = Math.max(1, Math.floor(n / batch));
  let cachedEpoch = -1;
  let order: number[] = [];
  return (step: number) => {
    const epoch = Math.floor(step / perEpoch);
    if (epoch !== cachedEpoch) {
      order = permutation(n, seed, epoch);
      cachedEpoch = epoch;
    }
    const k = step % perEpoch;
    return order.slice(k * batch, Math.min(n, (k + 1) * batch));
  };
}
