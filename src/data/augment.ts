// Image decoding and augmentation with sharp, producing normalised float
// pixels (HWC). The train path is torchvision's RandomResizedCrop +
// horizontal flip + ColorJitter; the eval path is resize + centre crop.

import { headerDims } from './image-header.js';
import type { Rng } from './rng.js';
import { loadSharp } from './sharp.js';

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

export interface AugmentSpec {
  /** Output side (square). */
  size: number;
  /** true: random crop, flip, jitter; false: resize + centre crop. */
  train: boolean;
  /** RandomResizedCrop area fraction range (S-SMKE: [0.9, 1]). */
  scale?: [number, number];
  /** RandomResizedCrop aspect ratio range. */
  ratio?: [number, number];
  /** Probability of a horizontal flip. */
  flip?: number;
  /** ColorJitter strength for brightness, contrast and saturation (S-SMKE: 0.4); 0 disables. */
  jitter?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
}

export interface Crop {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** torchvision's RandomResizedCrop.get_params: 10 tries at a random area and ratio, then a centre crop. */
export function randomResizedCrop(width: number, height: number, scale: [number, number], ratio: [number, number], rng: Rng): Crop {
  const area = width * height;
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let i = 0; i < 10; i++) {
    const target = area * rng.range(scale[0], scale[1]);
    const r = Math.exp(rng.range(logR[0], logR[1]));
    const w = Math.round(Math.sqrt(target * r));
    const h = Math.round(Math.sqrt(target / r));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return { left: rng.int(width - w + 1), top: rng.int(height - h + 1), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/** Per-image colour jitter factors (torchvision's ColorJitter: each factor uniform in [1-j, 1+j]). */
export interface Jitter {
  brightness: number;
  contrast: number;
  saturation: number;
}

/**
 * Decode `bytes`, augment, and write normalised pixels into `out` at `offset`
 * (size*size*3 floats, HWC). Writing in place lets a batch be one allocation.
 * `dims` (the record's width and height, when the index has them) saves a
 * header parse per image; without them a JPEG or PNG header is read in JS, and
 * only other images (or EXIF-rotated ones) ask sharp for their metadata.
 */
export async function decodeInto(
  bytes: Uint8Array,
  spec: AugmentSpec,
  rng: Rng | undefined,
  out: Float32Array,
  offset: number,
  dims?: { width?: number; height?: number },
): Promise<void> {
  const sharp = await loadSharp();
  const size = spec.size;
  let img = sharp(bytes, { failOn: 'error' });
  let jitter: Jitter | undefined;
  if (spec.train) {
    if (!rng) throw new Error('decodeInto: train augmentation needs an Rng');
    let w = dims?.width;
    let h = dims?.height;
    if (!w || !h) ({ width: w, height: h } = headerDims(bytes) ?? {});
    if (!w || !h) {
      const meta = await img.metadata();
      if (!meta.width || !meta.height) throw new Error('image has no dimensions');
      // EXIF-rotated photos: crop in the displayed orientation.
      [w, h] = (meta.orientation ?? 1) >= 5 ? [meta.height, meta.width] : [meta.width, meta.height];
    }
    const crop = randomResizedCrop(w, h, spec.scale ?? [0.08, 1], spec.ratio ?? [3 / 4, 4 / 3], rng);
    // Auto-orient always (a no-op without EXIF orientation): record sizes are in displayed orientation.
    img = img.rotate().extract(crop).resize(size, size, { fit: 'fill', kernel: 'cubic' });
    if (rng.chance(spec.flip ?? 0.5)) img = img.flop();
    const j = spec.jitter ?? 0;
    if (j > 0) jitter = { brightness: rng.range(1 - j, 1 + j), contrast: rng.range(1 - j, 1 + j), saturation: rng.range(1 - j, 1 + j) };
  } else {
    img = img.rotate().resize(size, size, { fit: 'cover', position: 'centre', kernel: 'cubic' });
  }
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size) throw new Error(`decoded to ${info.width}x${info.height}, expected ${size}x${size}`);
  normalise(data, info.channels, size * size, spec, jitter, out, offset);
}

/**
 * Bytes -> (x/255 - mean)/std, with colour jitter applied on the way: one pass
 * in JS is far cheaper than sharp's modulate (a colour-space round trip).
 * Jitter follows torchvision: brightness scales, contrast blends with the
 * image's mean grey, saturation blends with each pixel's grey; each step
 * clamps to [0, 1]. Brightness and contrast depend on the byte alone, so they
 * are one 256-entry table; only saturation needs per-pixel arithmetic.
 */
export function normalise(data: Uint8Array, ch: number, n: number, spec: AugmentSpec, jitter: Jitter | undefined, out: Float32Array, offset: number): void {
  const mean = spec.mean ?? IMAGENET_MEAN;
  const std = spec.std ?? IMAGENET_STD;
  const g = ch >= 3 ? 1 : 0; // a 1-channel result (grey input) is repeated into R, G and B
  const b = ch >= 3 ? 2 : 0;
  const i0 = 1 / std[0],
    i1 = 1 / std[1],
    i2 = 1 / std[2];
  const m0 = mean[0],
    m1 = mean[1],
    m2 = mean[2];
  if (!jitter) {
    const l0 = new Float32Array(256),
      l1 = new Float32Array(256),
      l2 = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      l0[v] = (v / 255 - m0) * i0;
      l1[v] = (v / 255 - m1) * i1;
      l2[v] = (v / 255 - m2) * i2;
    }
    for (let p = 0, q = 0, o = offset; p < n; p++, q += ch, o += 3) {
      out[o] = l0[data[q]!]!;
      out[o + 1] = l1[data[q + g]!]!;
      out[o + 2] = l2[data[q + b]!]!;
    }
    return;
  }
  const { brightness: bf, contrast: cf, saturation: sf } = jitter;
  // Mean grey from per-channel integer sums: three adds per pixel, weighted once at the end.
  let s0 = 0,
    s1 = 0,
    s2 = 0;
  for (let q = 0, e = n * ch; q < e; q += ch) {
    s0 += data[q]!;
    s1 += data[q + g]!;
    s2 += data[q + b]!;
  }
  const meanGrey = Math.min(1, ((0.299 * s0 + 0.587 * s1 + 0.114 * s2) / n / 255) * bf);
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) {
    const x = Math.min(1, (v / 255) * bf);
    lut[v] = Math.min(1, Math.max(0, cf * x + (1 - cf) * meanGrey));
  }
  // Saturation blends each channel with the pixel's grey: x = sf*c + (1-sf)*grey. Both terms come
  // from tables of the byte (sat[v] = sf*lut[v], gR/gG/gB[v] = (1-sf)*weight*lut[v]), so the one
  // pass over the pixels is table reads, adds, a clamp and the normalisation.
  const keep = 1 - sf;
  const sat = new Float64Array(256),
    gR = new Float64Array(256),
    gG = new Float64Array(256),
    gB = new Float64Array(256);
  for (let v = 0; v < 256; v++) {
    const y = lut[v]!;
    sat[v] = sf * y;
    gR[v] = keep * 0.299 * y;
    gG[v] = keep * 0.587 * y;
    gB[v] = keep * 0.114 * y;
  }
  for (let p = 0, q = 0, o = offset; p < n; p++, q += ch, o += 3) {
    const r = data[q]!,
      gg = data[q + g]!,
      bb = data[q + b]!;
    const grey = gR[r]! + gG[gg]! + gB[bb]!;
    let x = sat[r]! + grey;
    out[o] = ((x < 0 ? 0 : x > 1 ? 1 : x) - m0) * i0;
    x = sat[gg]! + grey;
    out[o + 1] = ((x < 0 ? 0 : x > 1 ? 1 : x) - m1) * i1;
    x = sat[bb]! + grey;
    out[o + 2] = ((x < 0 ? 0 : x > 1 ? 1 : x) - m2) * i2;
  }
}
