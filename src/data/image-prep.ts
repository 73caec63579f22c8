// Checking and normalising one image before it enters a dataset: every
// converter (COCO, Flickr30K, ImageNet, scraping) rejects the same bad input
// with the same reasons.

import { FetchError } from './retry-policy.js';
import { loadSharp } from './sharp.js';

export interface PreparedImage {
  data: Buffer;
  ext: 'jpg' | 'png';
  width: number;
  height: number;
}

export interface PrepareOptions {
  /** Shorter side after resizing (never enlarged); 0 keeps JPEG/PNG bytes unchanged. */
  imageSize: number;
  /** Smaller images are placeholders. */
  minSide: number;
}

/** Throws FetchError with reason `html`, `decode_error` or `placeholder`. */
export async function prepareImage(bytes: Buffer, opts: PrepareOptions): Promise<PreparedImage> {
  const sharp = await loadSharp();
  if (bytes.length === 0) throw new FetchError('empty body', 'decode_error', false);
  if (/^\s*</.test(bytes.subarray(0, 64).toString('latin1'))) throw new FetchError('body is HTML/XML, not an image', 'html', false);
  if (opts.imageSize > 0) {
    // One decode-resize-encode pass; a placeholder stays tiny (never enlarged), so the output size tells.
    let out;
    try {
      out = await sharp(bytes, { failOn: 'error', animated: false })
        .rotate()
        .resize({ width: opts.imageSize, height: opts.imageSize, fit: 'outside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' })
        .jpeg({ quality: 90 })
        .toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw new FetchError(`image does not decode: ${(err as Error).message}`, 'decode_error', false);
    }
    if (out.info.width < opts.minSide || out.info.height < opts.minSide) {
      throw new FetchError(`image is ${out.info.width}x${out.info.height}, a placeholder`, 'placeholder', false);
    }
    return { data: out.data, ext: 'jpg', width: out.info.width, height: out.info.height };
  }
  let meta;
  try {
    meta = await sharp(bytes).metadata();
  } catch (err) {
    throw new FetchError(`not a decodable image: ${(err as Error).message}`, 'decode_error', false);
  }
  if (!meta.width || !meta.height || meta.width < opts.minSide || meta.height < opts.minSide) {
    throw new FetchError(`image is ${meta.width}x${meta.height}, a placeholder`, 'placeholder', false);
  }
  const rotated = (meta.orientation ?? 1) >= 5;
  if (meta.format === 'jpeg' || meta.format === 'png') {
    // Kept as published, but decoded once (at 1/8 scale, cheap with JPEG shrink-on-load) so truncated files are caught here, not mid-training.
    try {
      await sharp(bytes, { failOn: 'error' }).resize(32, 32, { fit: 'inside' }).raw().toBuffer();
    } catch (err) {
      throw new FetchError(`image does not decode: ${(err as Error).message}`, 'decode_error', false);
    }
    const [width, height] = rotated ? [meta.height, meta.width] : [meta.width, meta.height];
    return { data: bytes, ext: meta.format === 'jpeg' ? 'jpg' : 'png', width, height };
  }
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error', animated: false })
      .rotate()
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 90 })
      .toBuffer({ resolveWithObject: true });
    return { data, ext: 'jpg', width: info.width, height: info.height };
  } catch (err) {
    throw new FetchError(`image does not decode: ${(err as Error).message}`, 'decode_error', false);
  }
}

/** Count of failures by reason, for stats files. */
export class ReasonCounter {
  readonly counts: Record<string, number> = {};
  add(reason: string): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + 1;
  }
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
}
