// The work of dataset.cifar (descriptor in ./cifar.ts).

import { join } from 'node:path';
import { cifarRecords, parseNames } from '../../data/cifar-records.js';
import { ImageDatasetWriter } from '../../data/image-dataset.js';
import { tarFiles } from '../../data/tar-read.js';
import type { StageContext } from '../stage-kind.js';
import { CIFAR_URLS, type CifarParams } from './cifar.js';
import { obtain, using } from './obtain.js';
import { loadSharp } from '../../data/sharp.js';

export async function runCifar(ctx: StageContext, params: CifarParams): Promise<void> {
  const variant = params.variant;
  const url = params.url ?? CIFAR_URLS[variant];
  // The md5 is checked as the archive arrives and again before a later attempt reuses it.
  const archive = await obtain(ctx, { name: `${variant}-binary.tar.gz`, url, md5: params.md5, format: 'tar' });
  const files = new Map<string, Buffer>();
  await using(ctx, archive, async () => {
    for await (const f of tarFiles(archive)) files.set(f.name.split('/').pop()!, f.data);
  });
  const fine = params.label !== 'coarse';
  const namesFile = variant === 'cifar10' ? 'batches.meta.txt' : fine ? 'fine_label_names.txt' : 'coarse_label_names.txt';
  const names = files.get(namesFile);
  if (!names) throw new Error(`${url} has no ${namesFile}: is it the ${variant} binary version (${CIFAR_URLS[variant]})?`);
  const classes = parseNames(names.toString('utf8'));
  const batches: [string, string][] =
    variant === 'cifar10'
      ? [...[1, 2, 3, 4, 5].map((i) => ['train', `data_batch_${i}.bin`] as [string, string]), ['test', 'test_batch.bin']]
      : [
          ['train', 'train.bin'],
          ['test', 'test.bin'],
        ];
  const layout = variant === 'cifar10' ? ({ labelBytes: 1, labelIndex: 0 } as const) : ({ labelBytes: 2, labelIndex: fine ? 1 : 0 } as const);
  const sharp = await loadSharp();
  const writer = new ImageDatasetWriter(join(ctx.outDir, 'images'), {
    type: 'image-class',
    name: variant,
    source: url,
    classes,
    shardSize: params.shard_size,
  });
  const counters: Record<string, number> = {};
  for (const [split, file] of batches) {
    const buf = files.get(file);
    if (!buf) throw new Error(`${url} has no ${file}; the archive is incomplete`);
    for (const { label, rgb } of cifarRecords(buf, layout, file)) {
      if (label >= classes.length) throw new Error(`${file}: label ${label} but only ${classes.length} class names`);
      const n = (counters[split] = (counters[split] ?? 0) + 1) - 1;
      const png = await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toBuffer();
      await writer.add({ id: `${variant}-${split}-${String(n).padStart(5, '0')}`, split, data: png, ext: 'png', width: 32, height: 32, label });
      if (n % 1000 === 0) ctx.signal.throwIfAborted();
    }
    ctx.log.info(`${variant} ${split}: ${counters[split]} images`);
  }
  await writer.finish();
  ctx.metric(
    'images',
    Object.values(counters).reduce((a, b) => a + b, 0),
  );
}
