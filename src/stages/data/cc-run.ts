// The work of dataset.cc3m / dataset.cc12m (descriptors in ./cc.ts):
// index -> scrape (resumable, in the scratch dir) -> shards in the output.

import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { redactUrl } from '../../data/retry-policy.js';
import { ImageDatasetWriter, writeJsonAtomic } from '../../data/image-dataset.js';
import { readStoredImage, scrapeImages } from '../../data/scrape.js';
import { readCaptionTsv } from '../../data/tsv.js';
import type { StageContext } from '../stage-kind.js';
import { CC3M_HELP, type Cc12mParams, type Cc3mParams } from './cc.js';
import { obtain } from './obtain.js';

/** The user's index file, resolved against the project; `missing` says what to do when it is not there. */
async function localIndex(ctx: StageContext, tsv: string, missing: (path: string) => string): Promise<string> {
  const p = resolve(ctx.projectDir, tsv);
  try {
    await access(p);
  } catch {
    throw new Error(missing(p));
  }
  return p;
}

export async function runCc3m(ctx: StageContext, params: Cc3mParams): Promise<void> {
  const tsv = await localIndex(ctx, params.tsv, (p) => `CC3M index not found at ${p}. ${CC3M_HELP}.`);
  await runCaptionScrape(ctx, params, 'cc3m', tsv, 'Train-GCC-training.tsv');
}

export async function runCc12m(ctx: StageContext, params: Cc12mParams): Promise<void> {
  const tsv =
    typeof params.tsv === 'string'
      ? await localIndex(ctx, params.tsv, (p) => `CC12M index not found at ${p}; remove \`tsv\` to download it from ${params.url}`)
      : // The index is fetched into scratch, verified, and reused by later attempts of this key only once checked again.
        await obtain(ctx, { name: 'cc12m.tsv', url: params.url, sha256: params.sha256 });
  await runCaptionScrape(ctx, params, 'cc12m', tsv, redactUrl(params.url));
}

async function runCaptionScrape(ctx: StageContext, params: Cc3mParams | Cc12mParams, which: 'cc3m' | 'cc12m', tsv: string, source: string): Promise<void> {
  const index = await readCaptionTsv(tsv, which === 'cc3m' ? 'caption-url' : 'url-caption', params.limit);
  const malformed = Object.values(index.malformed).reduce((a, b) => a + b, 0);
  ctx.log.info(`${which}: ${index.rows.length} rows to fetch${malformed ? `, ${malformed} malformed rows skipped` : ''}`);
  const stateDir = join(ctx.scratchDir, 'scrape');
  const writer = new ImageDatasetWriter(join(ctx.outDir, 'pairs'), {
    type: 'image-text',
    name: which,
    source,
    shardSize: params.shard_size,
  });
  const { stats } = await scrapeImages(index.rows, {
    stateDir,
    concurrency: params.concurrency,
    perHost: params.per_host,
    timeoutMs: params.timeout * 1000,
    retries: params.http_retries,
    retryDelayMs: params.retry_delay * 1000,
    userAgent: params.user_agent,
    imageSize: params.image_size,
    minSide: params.min_side,
    maxBytes: params.max_bytes,
    signal: ctx.signal,
    seed: ctx.seed,
    onProgress: (d, t) => ctx.progress(d, t, 'images'),
    // Shards are written in index order while later rows are still being fetched: no second pass
    // over the images once scraping ends. Rows resumed from an earlier attempt are read from disk.
    onSettled: async (r, o, data) => {
      if (!o.ok) return;
      data ??= readStoredImage(stateDir, o);
      await writer.add({
        id: `${which}-${String(r.row).padStart(9, '0')}`,
        split: 'train',
        data,
        ext: 'jpg',
        width: o.width,
        height: o.height,
        captions: [r.caption],
      });
    },
  });
  if (stats.resumed) ctx.log.info(`resumed: ${stats.resumed} rows were settled by an earlier attempt and not fetched again`);

  if (writer.count === 0) {
    ctx.log.warn(`${which}: no image survived scraping (${JSON.stringify(stats.failed)}); the dataset is empty`);
  }
  await writer.finish();
  const report = { ...stats, malformed_rows: malformed, malformed_by_reason: index.malformed, index_lines: index.lines };
  await writeJsonAtomic(join(ctx.outDir, 'stats.json'), report);
  ctx.metric('ok', stats.ok);
  ctx.metric('failed', stats.attempted - stats.ok);
  ctx.metric('malformed_rows', malformed);
  const reasons = Object.entries(stats.failed)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  ctx.log.info(`${which}: ${stats.ok} of ${stats.attempted} images kept${reasons ? ` (failed: ${reasons})` : ''}`);
}
