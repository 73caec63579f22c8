// Image decoding and augmentation with sharp, producing normalised float
// pixels (HWC). The train path is torchvision's RandomResizedCrop +
// horizontal flip + ColorJitter; the eval path is resize + centre crop.

import type { Rng } from './rng.js';

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

/**
 * Decode `bytes`, augment, and write normalised pixels into `out` at `offset`
 * (size*size*3 floats, HWC). Writing in place lets a batch be one allocation.
 */
export async function decodeInto(bytes: Uint8Array, spec: AugmentSpec, rng: Rng | undefined, out: Float32Array, offset: number): Promise<void> {
  const { default: sharp } = await import('sharp');
  const size = spec.size;
  let img = sharp(bytes, { failOn: 'error' });
  if (spec.train) {
    if (!rng) throw new Error('decodeInto: train augmentation needs an Rng');
    const meta = await img.metadata();
    if (!meta.width || !meta.height) throw new Error('image has no dimensions');
    // EXIF-rotated photos: crop in the displayed orientation.
    const [w, h] = (meta.orientation ?? 1) >= 5 ? [meta.height, meta.width] : [meta.width, meta.height];
    const crop = randomResizedCrop(w, h, spec.scale ?? [0.08, 1], spec.ratio ?? [3 / 4, 4 / 3], rng);
    img = img.rotate().extract(crop).resize(size, size, { fit: 'fill', kernel: 'cubic' });
    if (rng.chance(spec.flip ?? 0.5)) img = img.flop();
    const j = spec.jitter ?? 0;
    if (j > 0) {
      const brightness = rng.range(1 - j, 1 + j);
      const saturation = rng.range(1 - j, 1 + j);
      const contrast = rng.range(1 - j, 1 + j);
      img = img.modulate({ brightness, saturation }).linear(contrast, 128 * (1 - contrast));
    }
  } else {
    img = img.rotate().resize(size, size, { fit: 'cover', position: 'centre', kernel: 'cubic' });
  }
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size) throw new Error(`decoded to ${info.width}x${info.height}, expected ${size}x${size}`);
  const ch = info.channels;
  const mean = spec.mean ?? IMAGENET_MEAN;
  const std = spec.std ?? IMAGENET_STD;
  const scale = [1 / (255 * std[0]), 1 / (255 * std[1]), 1 / (255 * std[2])];
  const shift = [mean[0] / std[0], mean[1] / std[1], mean[2] / std[2]];
  const n = size * size;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      // A 1-channel result (grey input) is repeated into R, G and B.
      const v = data[p * ch + (ch >= 3 ? c : 0)]!;
      out[offset + p * 3 + c] = v * scale[c]! - shift[c]!;
    }
  }
}
