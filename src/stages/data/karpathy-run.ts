// The work of dataset.coco and dataset.flickr30k (descriptors in ./karpathy.ts).

import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { detectArchive } from '../../data/extract.js';
import { FetchError } from '../../data/retry-policy.js';
import { ImageDatasetWriter, writeJsonAtomic } from '../../data/image-dataset.js';
import { ReasonCounter, prepareImage } from '../../data/image-prep.js';
import { parseKarpathy, type KarpathyImage } from '../../data/karpathy-splits.js';
import { tarFiles } from '../../data/tar-read.js';
import { ZipReader } from '../../data/zip.js';
import type { StageContext } from '../stage-kind.js';
import { FLICKR_HELP, type CocoParams, type Flickr30kParams } from './karpathy.js';

/** What both kinds share: the Karpathy split and how images are stored. */
type KarpathyParams = CocoParams | Flickr30kParams;
import { obtain, using } from './obtain.js';

async function karpathySplit(ctx: StageContext, params: KarpathyParams, json: string): Promise<KarpathyImage[]> {
  const path = await obtain(ctx, {
    name: 'caption_datasets.zip',
    url: params.karpathy_url,
    local: params.karpathy,
    format: 'zip',
  });
  let text: string;
  if ((await detectArchive(path)) === 'zip') {
    text = await using(ctx, path, async () => {
      const zip = await ZipReader.open(path);
      try {
        const member = zip.find(json);
        if (!member) throw new Error(`${path} has no ${json}; is it Karpathy's caption_datasets.zip?`);
        return (await zip.read(member)).toString('utf8');
      } finally {
        zip.close();
      }
    });
  } else text = await readFile(path, 'utf8');
  const { images, malformed } = parseKarpathy(text, json);
  if (malformed) ctx.log.warn(`${json}: ${malformed} malformed image entries skipped`);
  const wanted = new Set<string>(params.splits);
  return images.filter((im) => wanted.has(im.split));
}

async function finish(ctx: StageContext, writer: ImageDatasetWriter, expected: number, dropped: ReasonCounter, name: string): Promise<void> {
  const d = await writer.finish();
  await writeJsonAtomic(join(ctx.outDir, 'stats.json'), { expected, ok: writer.count, dropped: dropped.counts, splits: d.splits });
  ctx.metric('images', writer.count);
  ctx.metric('dropped', dropped.total);
  const reasons = Object.entries(dropped.counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  ctx.log.info(`${name}: ${writer.count} of ${expected} images (${JSON.stringify(d.splits)})${reasons ? `; dropped: ${reasons}` : ''}`);
}

async function addImage(
  writer: ImageDatasetWriter,
  im: KarpathyImage,
  id: string,
  bytes: Buffer,
  params: KarpathyParams,
  dropped: ReasonCounter,
): Promise<void> {
  try {
    const img = await prepareImage(bytes, { imageSize: params.image_size, minSide: 1 });
    await writer.add({ id, split: im.split, data: img.data, ext: img.ext, width: img.width, height: img.height, captions: im.captions });
  } catch (err) {
    if (!(err instanceof FetchError)) throw err;
    dropped.add(err.reason);
  }
}

export async function runCoco(ctx: StageContext, params: CocoParams): Promise<void> {
  const images = await karpathySplit(ctx, params, 'dataset_coco.json');
  const needed = new Set(images.map((im) => im.filepath));
  const zips = new Map<string, ZipReader>();
  try {
    for (const [dir, urlKey, localKey] of [
      ['train2014', 'train_url', 'train_zip'],
      ['val2014', 'val_url', 'val_zip'],
    ] as const) {
      if (!needed.has(dir)) continue;
      const path = await obtain(ctx, { name: `${dir}.zip`, url: params[urlKey], local: params[localKey], format: 'zip' });
      zips.set(dir, await using(ctx, path, () => ZipReader.open(path)));
    }
    const writer = new ImageDatasetWriter(join(ctx.outDir, 'pairs'), {
      type: 'image-text',
      name: 'coco-karpathy',
      source: 'COCO 2014 + Karpathy split',
      shardSize: params.shard_size,
    });
    const dropped = new ReasonCounter();
    let n = 0;
    for (const im of images) {
      ctx.signal.throwIfAborted();
      const zip = zips.get(im.filepath);
      const member = zip?.find(`${im.filepath}/${im.filename}`) ?? zip?.find(im.filename);
      if (!zip || !member) dropped.add('missing_image');
      // A damaged image zip is discarded (when downloaded), so the next attempt fetches it again.
      else await addImage(writer, im, `coco-${im.id}`, await using(ctx, zip.path, () => zip.read(member)), params, dropped);
      if (++n % 100 === 0 || n === images.length) ctx.progress(n, images.length, 'images');
    }
    await finish(ctx, writer, images.length, dropped, 'COCO');
  } finally {
    for (const z of zips.values()) z.close();
  }
}

export async function runFlickr(ctx: StageContext, params: Flickr30kParams): Promise<void> {
  const archive = resolve(ctx.projectDir, params.archive);
  try {
    await access(archive);
  } catch {
    throw new Error(`Flickr30K archive not found at ${archive}. ${FLICKR_HELP} at ${archive} (or set \`archive\`).`);
  }
  const images = await karpathySplit(ctx, params, 'dataset_flickr30k.json');
  const byName = new Map(images.map((im) => [im.filename, im]));
  const writer = new ImageDatasetWriter(join(ctx.outDir, 'pairs'), {
    type: 'image-text',
    name: 'flickr30k-karpathy',
    source: 'flickr30k-images.tar.gz + Karpathy split',
    shardSize: params.shard_size,
  });
  const dropped = new ReasonCounter();
  const seen = new Set<string>();
  // One pass over the archive in its own order: a 4 GB tar.gz is read once, never extracted.
  for await (const f of tarFiles(archive, (name) => byName.has(name.split('/').pop()!))) {
    ctx.signal.throwIfAborted();
    const base = f.name.split('/').pop()!;
    if (seen.has(base)) continue;
    seen.add(base);
    const im = byName.get(base)!;
    await addImage(writer, im, `flickr-${im.id}`, f.data, params, dropped);
    if (seen.size % 100 === 0) ctx.progress(seen.size, images.length, 'images');
  }
  for (const im of images) if (!seen.has(im.filename)) dropped.add('missing_image');
  await finish(ctx, writer, images.length, dropped, 'Flickr30K');
}
