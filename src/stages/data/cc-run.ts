// The work of dataset.cc3m / dataset.cc12m (descriptors in ./cc.ts):
// index -> scrape (resumable, in the scratch dir) -> shards in the output.

import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Value } from '../../compiler/plan.js';
import { redactUrl } from '../../data/retry-policy.js';
import { ImageDatasetWriter, writeJsonAtomic } from '../../data/image-dataset.js';
import { readStoredImage, scrapeImages } from '../../data/scrape.js';
import { readCaptionTsv } from '../../data/tsv.js';
import type { StageContext } from '../stage-kind.js';
import { CC3M_HELP } from './cc.js';
import { obtain } from './obtain.js';

async function indexPath(ctx: StageContext, params: Record<string, Value>, which: 'cc3m' | 'cc12m'): Promise<string> {
  if (typeof params.tsv === 'string') {
    const p = resolve(ctx.projectDir, params.tsv);
    try {
      await access(p);
    } catch {
      throw new Error(
        which === 'cc3m' ? `CC3M index not found at ${p}. ${CC3M_HELP}.` : `CC12M index not found at ${p}; remove \`tsv\` to download it from ${params.url}`,
      );
    }
    return p;
  }
  // The index is fetched into scratch, verified, and reused by later attempts of this key only once checked again.
  return obtain(ctx, { name: 'cc12m.tsv', url: String(params.url), sha256: params.sha256 as string | undefined });
}

export async function runCaptionScrape(ctx: StageContext, params: Record<string, Value>, which: 'cc3m' | 'cc12m'): Promise<void> {
  const tsv = await indexPath(ctx, params, which);
  const index = await readCaptionTsv(tsv, which === 'cc3m' ? 'caption-url' : 'url-caption', params.limit as number);
  const malformed = Object.values(index.malformed).reduce((a, b) => a + b, 0);
  ctx.log.info(`${which}: ${index.rows.length} rows to fetch${malformed ? `, ${malformed} malformed rows skipped` : ''}`);
  const stateDir = join(ctx.scratchDir, 'scrape');
  const writer = new ImageDatasetWriter(join(ctx.outDir, 'pairs'), {
    type: 'image-text',
    name: which,
    source: which === 'cc3m' ? 'Train-GCC-training.tsv' : redactUrl(String(params.url)),
    shardSize: params.shard_size as number,
  });
  const { stats } = await scrapeImages(index.rows, {
    stateDir,
    concurrency: params.concurrency as number,
    perHost: params.per_host as number,
    timeoutMs: (params.timeout as number) * 1000,
    retries: params.http_retries as number,
    retryDelayMs: (params.retry_delay as number) * 1000,
    userAgent: params.user_agent as string,
    imageSize: params.image_size as number,
    minSide: params.min_side as number,
    maxBytes: params.max_bytes as number,
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
