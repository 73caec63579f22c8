// The work of the `download` kind (descriptor in ./download.ts).

import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadFile } from '../../data/download-file.js';
import { extractArchive } from '../../data/extract.js';
import { applyMirror, redactUrl } from '../../data/retry-policy.js';
import type { StageContext } from '../stage-kind.js';
import { downloadName, type DownloadParams } from './download.js';

export async function runDownload(ctx: StageContext, params: DownloadParams): Promise<void> {
  const original = params.url;
  const url = applyMirror(original, process.env.SMKE_MIRROR);
  if (url !== original) ctx.log.info(`SMKE_MIRROR: fetching ${redactUrl(original)} from ${redactUrl(url)}`);
  const name = downloadName(params);
  const dest = join(ctx.outDir, name);
  const started = Date.now();
  const res = await downloadFile(url, dest, {
    partPath: join(ctx.scratchDir, `${name}.part`),
    sha256: params.sha256,
    md5: params.md5,
    size: params.size,
    retry: { retries: params.http_retries, baseDelayMs: params.retry_delay * 1000 },
    stallTimeoutMs: params.stall_timeout * 1000,
    signal: ctx.signal,
    seed: ctx.seed,
    onProgress: (done, total) => ctx.progress(done, total, 'bytes'),
    onRetry: (err, attempt, delay) => ctx.log.warn(`attempt ${attempt} failed (${err.message}); retrying in ${(delay / 1000).toFixed(1)} s`),
  });
  ctx.log.info(`downloaded ${redactUrl(url)}: ${res.bytes} bytes, sha256 ${res.sha256} (${res.attempts} attempt(s), ${res.resumed} resumed)`);
  ctx.metric('bytes', res.bytes);
  ctx.metric('attempts', res.attempts);
  ctx.metric('seconds', (Date.now() - started) / 1000);
  const record: Record<string, unknown> = { url: redactUrl(original), file: name, bytes: res.bytes, sha256: res.sha256, md5: res.md5 };
  if (params.extract) {
    const ex = await extractArchive(dest, join(ctx.outDir, 'data'), undefined, {
      unsafe: params.unsafe_entries,
      limits: { maxBytes: params.max_extract_bytes, maxEntries: params.max_extract_entries, maxRatio: params.max_extract_ratio },
      limitNames: { maxBytes: 'max_extract_bytes', maxEntries: 'max_extract_entries', maxRatio: 'max_extract_ratio' },
      signal: ctx.signal,
      onProgress: (bytes) => ctx.progress(bytes, 0, 'bytes extracted'),
    });
    for (const s of ex.skipped) ctx.log.warn(`skipped archive entry ${JSON.stringify(s.name)}: ${s.reason}`);
    ctx.log.info(`extracted ${ex.files} files, ${ex.dirs} directories, ${ex.links} links (${ex.bytes} bytes)`);
    ctx.metric('files', ex.files);
    ctx.metric('skipped_entries', ex.skipped.length);
    record.extracted = { files: ex.files, dirs: ex.dirs, links: ex.links, bytes: ex.bytes, skipped: ex.skipped };
    if (!params.keep_archive) await rm(dest, { force: true });
  }
  await writeFile(join(ctx.outDir, 'download.json'), JSON.stringify(record, null, 2) + '\n');
}
