// Image batches for the ml stages: decodes a split of an image dataset once
// into RGB bytes at the model's size, then assembles augmented, normalised
// batches from memory (the mini images are tiny; decoding every step would
// cost more than the training step). Normalisation and colour jitter are the
// data library's (src/data/augment.ts), the same as its streaming loader's.

import { normalise, type AugmentSpec, type Jitter } from '../../data/augment.js';
import { ImageDataset } from '../../data/image-dataset.js';
import { loadSharp } from '../../data/sharp.js';
import type { ImageRecord } from '../../data/dataset-format.js';
import type { Rng } from '../../data/rng.js';
import { permutation } from '../../data/loader.js';

export interface ImageSplit {
  records: ImageRecord[];
  size: number;
  /** [N, size, size, 3] RGB bytes, decoded once (a quarter of the memory of floats). */
  pixels: Uint8Array;
  classes: string[];
}

export async function loadImageSplit(dir: string, split: string, size: number, opts: { limit?: number; signal?: AbortSignal } = {}): Promise<ImageSplit> {
  const sharp = await loadSharp();
  const ds = await ImageDataset.open(dir);
  let records = await ds.records(split);
  if (opts.limit !== undefined && opts.limit > 0) records = records.slice(0, opts.limit);
  const per = size * size * 3;
  const pixels = new Uint8Array(records.length * per);
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
    raws.forEach((raw, k) => pixels.set(raw.subarray(0, per), (i + k) * per));
  }
  return { records, size, pixels, classes: ds.classes };
}

/**
 * Normalised pixels of the chosen images as one [B, size, size, 3] array.
 * With `rng` (training) each image gets the reference's augmentation: a
 * random resized crop (scale 0.9-1, bilinear), a random horizontal flip and
 * ColorJitter(`jitter`).
 */
export function imageBatch(split: ImageSplit, idx: number[], rng?: Rng, jitter = 0.4): Float32Array {
  const s = split.size,
    per = s * s * 3;
  const spec: AugmentSpec = { size: s, train: rng !== undefined };
  const out = new Float32Array(idx.length * per);
  const cropped = rng ? new Uint8Array(per) : undefined;
  idx.forEach((n, b) => {
    const src = split.pixels.subarray(n * per, (n + 1) * per);
    if (!rng || !cropped) {
      normalise(src, 3, s * s, spec, undefined, out, b * per);
      return;
    }
    cropFlip(src, s, rng, cropped);
    // Factors drawn in torchvision's order: brightness, contrast, saturation.
    const factors: Jitter | undefined =
      jitter > 0
        ? { brightness: rng.range(1 - jitter, 1 + jitter), contrast: rng.range(1 - jitter, 1 + jitter), saturation: rng.range(1 - jitter, 1 + jitter) }
        : undefined;
    normalise(cropped, 3, s * s, spec, factors, out, b * per);
  });
  return out;
}

/**
 * Two views of each chosen image for a contrastive objective (src/ml/contrastive.ts):
 * [2B, size, size, 3] normalised pixels, the B first views then the B second ones.
 * Each view is an independent random square crop of `scaleMin`-100% of the area,
 * resized back (bilinear), flipped half the time only with `flip`, and no colour
 * jitter: colour is what the synthetic world's classes and captions name (and
 * left/right its positions, hence no flip by default).
 */
export function viewBatch(split: ImageSplit, idx: number[], rng: Rng, opts: { scaleMin: number; flip: boolean }): Float32Array {
  const s = split.size,
    per = s * s * 3;
  const spec: AugmentSpec = { size: s, train: true };
  const out = new Float32Array(2 * idx.length * per);
  const cropped = new Uint8Array(per);
  for (let v = 0; v < 2; v++)
    idx.forEach((n, b) => {
      cropFlip(split.pixels.subarray(n * per, (n + 1) * per), s, rng, cropped, opts.scaleMin, 1 - opts.scaleMin, opts.flip);
      normalise(cropped, 3, s * s, spec, undefined, out, (v * idx.length + b) * per);
    });
  return out;
}

/**
 * A random square crop of `scaleMin`-(`scaleMin` + `scaleSpan`) of the area
 * (90-100% for the reference's training batches), resized back to `s` (bilinear) and, with
 * `flip`, flipped half the time, into `dst`.
 */
function cropFlip(src: Uint8Array, s: number, rng: Rng, dst: Uint8Array, scaleMin = 0.9, scaleSpan = 0.1, flipping = true): void {
  // (min, span) rather than min alone: 0.9 + 0.1 * r is not 0.9 + (1 - 0.9) * r in floating point, and the reference's batches stay bit-identical.
  const side = s * Math.sqrt(scaleMin + scaleSpan * rng.next());
  const x0 = rng.next() * (s - side),
    y0 = rng.next() * (s - side);
  const flip = flipping && rng.chance(0.5);
  const step = side / s;
  for (let y = 0; y < s; y++) {
    const sy = Math.min(s - 1, y0 + (y + 0.5) * step - 0.5);
    const iy = Math.max(0, Math.floor(sy)),
      fy = Math.max(0, sy - iy),
      iy1 = Math.min(s - 1, iy + 1);
    for (let x = 0; x < s; x++) {
      const xx = flip ? s - 1 - x : x;
      const sx = Math.min(s - 1, x0 + (xx + 0.5) * step - 0.5);
      const ix = Math.max(0, Math.floor(sx)),
        fx = Math.max(0, sx - ix),
        ix1 = Math.min(s - 1, ix + 1);
      for (let c = 0; c < 3; c++) {
        const v00 = src[(iy * s + ix) * 3 + c]!,
          v01 = src[(iy * s + ix1) * 3 + c]!;
        const v10 = src[(iy1 * s + ix) * 3 + c]!,
          v11 = src[(iy1 * s + ix1) * 3 + c]!;
        dst[(y * s + x) * 3 + c] = Math.round((v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy);
      }
    }
  }
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
