// The work of dataset.imagenet (descriptor in ./imagenet.ts).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FetchError } from '../../data/retry-policy.js';
import { ImageDatasetWriter, writeJsonAtomic } from '../../data/image-dataset.js';
import { ReasonCounter, prepareImage } from '../../data/image-prep.js';
import { parseClassesPy, shortName, synsetOf } from '../../data/imagenet-classes.js';
import { tarFiles } from '../../data/tar-read.js';
import type { StageContext } from '../stage-kind.js';
import { IMAGENET_TERMS, type ImagenetParams } from './imagenet.js';
import { obtain, using } from './obtain.js';

export async function runImagenet(ctx: StageContext, params: ImagenetParams): Promise<void> {
  const token = process.env.HF_TOKEN?.trim();
  if (!token) {
    throw new Error(
      `ImageNet-1k on the HF hub is gated: accept its terms at ${IMAGENET_TERMS} and set HF_TOKEN to an access token of that account (https://huggingface.co/settings/tokens)`,
    );
  }
  const endpoint = (process.env.HF_ENDPOINT?.trim() || 'https://huggingface.co').replace(/\/+$/, '');
  const base = `${endpoint}/datasets/${params.repo}/resolve/${encodeURIComponent(params.revision)}`;
  const headers = { authorization: `Bearer ${token}` };
  const get = async (file: string) => {
    try {
      return await obtain(ctx, { name: file.replace(/\//g, '_'), url: `${base}/${file}`, headers, format: file.endsWith('.tar.gz') ? 'tar' : undefined });
    } catch (err) {
      if (err instanceof FetchError && (err.reason === 'http_401' || err.reason === 'http_403')) {
        throw new Error(
          `the HF hub refused ${file} (${err.reason.slice(5)}): HF_TOKEN is invalid or its account has not accepted the terms at ${IMAGENET_TERMS}`,
        );
      }
      throw err;
    }
  };
  const { synsets, names } = parseClassesPy(await readFile(await get('classes.py'), 'utf8'));
  const label = new Map(synsets.map((s, i) => [s, i]));
  await writeJsonAtomic(
    join(ctx.outDir, 'synsets.json'),
    synsets.map((s, i) => ({ label: i, synset: s, name: names[i] })),
  );
  const writer = new ImageDatasetWriter(join(ctx.outDir, 'images'), {
    type: 'image-class',
    name: 'imagenet-1k',
    source: `${params.repo}@${params.revision}`,
    classes: names.map(shortName),
    shardSize: params.shard_size,
  });
  const dropped = new ReasonCounter();
  const splits = params.splits;
  const files: [string, string][] = [];
  if (splits.includes('train')) for (let i = 0; i < params.train_shards; i++) files.push(['train', `data/train_images_${i}.tar.gz`]);
  if (splits.includes('val')) files.push(['val', 'data/val_images.tar.gz']);
  let n = 0;
  for (const [split, file] of files) {
    const archive = await get(file);
    await using(ctx, archive, async () => {
      for await (const f of tarFiles(archive)) {
        ctx.signal.throwIfAborted();
        const base = f.name.split('/').pop()!;
        const syn = synsetOf(base);
        const lab = syn === undefined ? undefined : label.get(syn);
        if (lab === undefined) {
          dropped.add('unknown_class');
          continue;
        }
        try {
          const img = await prepareImage(f.data, { imageSize: params.image_size, minSide: 1 });
          await writer.add({ id: base.replace(/\.[A-Za-z]+$/, ''), split, data: img.data, ext: img.ext, width: img.width, height: img.height, label: lab });
        } catch (err) {
          if (!(err instanceof FetchError)) throw err;
          dropped.add(err.reason);
        }
        if (++n % 500 === 0) ctx.progress(n, 0, 'images');
      }
    });
  }
  const d = await writer.finish();
  await writeJsonAtomic(join(ctx.outDir, 'stats.json'), { splits: d.splits, dropped: dropped.counts });
  ctx.metric('images', writer.count);
  ctx.log.info(`ImageNet-1k: ${JSON.stringify(d.splits)}${dropped.total ? `; dropped ${JSON.stringify(dropped.counts)}` : ''}`);
}
