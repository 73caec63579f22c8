// Getting one source file for a dataset kind: a local copy when the user has
// one, otherwise a download into the scratch dir (resumable across attempts,
// SMKE_MIRROR applied). Shared by the dataset.* kinds.
//
// A downloaded file is kept in scratch for later attempts of the same key only
// with a record of what was verified (`<file>.ok`: size and sha256). Before it
// is reused it is checked again against that record, the expected digest and
// its format; a file that fails any check (or that the kind later finds
// corrupt, see `using`) is discarded and fetched again, so one bad response is
// never reused forever.

import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { digestFile, downloadFile } from '../../data/download-file.js';
import { ArchiveError, detectArchive } from '../../data/extract.js';
import { applyMirror, redactUrl } from '../../data/retry-policy.js';
import { ZipReader } from '../../data/zip.js';
import type { StageContext } from '../stage-kind.js';

export interface Source {
  /** File name in the scratch dir. */
  name: string;
  url?: string;
  /** A user-provided copy (project-relative or absolute); used when it exists. */
  local?: string;
  sha256?: string;
  md5?: string;
  headers?: Record<string, string>;
  /** What the file must be: a zip whose directory reads, or a tar / tar.gz. */
  format?: 'zip' | 'tar';
}

interface Verified {
  bytes: number;
  sha256: string;
  md5: string;
}

const okPath = (p: string) => `${p}.ok`;

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Why `path` is not a readable `format`, or undefined when it is. */
async function formatProblem(path: string, format: Source['format']): Promise<string | undefined> {
  if (format === 'tar') {
    const f = await detectArchive(path);
    return f === 'tar' || f === 'tar.gz' ? undefined : 'it is not a tar or tar.gz archive';
  }
  if (format === 'zip') {
    try {
      (await ZipReader.open(path)).close();
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}

/** Why the scratch copy `dest` may not be reused, or undefined when it still is what was verified. */
async function reuseProblem(dest: string, src: Source): Promise<string | undefined> {
  let rec: Verified;
  try {
    rec = JSON.parse(await readFile(okPath(dest), 'utf8')) as Verified;
  } catch {
    return 'no record of its verification (an interrupted or older attempt left it)';
  }
  const st = await stat(dest);
  if (st.size !== rec.bytes) return `its size is ${st.size} bytes, ${rec.bytes} were verified`;
  const d = await digestFile(dest);
  if (d.sha256 !== rec.sha256) return 'its content changed since it was verified';
  if (src.sha256 && d.sha256 !== src.sha256.toLowerCase()) return `sha256 ${d.sha256}, expected ${src.sha256.toLowerCase()}`;
  if (src.md5 && d.md5 !== src.md5.toLowerCase()) return `md5 ${d.md5}, expected ${src.md5.toLowerCase()}`;
  return formatProblem(dest, src.format);
}

/** Remove a downloaded copy and its record (never a user's own file outside the scratch dir). */
async function discard(ctx: StageContext, path: string): Promise<void> {
  if (!path.startsWith(ctx.scratchDir + sep)) return;
  await rm(path, { force: true });
  await rm(okPath(path), { force: true });
}

export async function obtain(ctx: StageContext, src: Source): Promise<string> {
  if (src.local) {
    const p = resolve(ctx.projectDir, src.local);
    if (await exists(p)) return p;
    if (!src.url) throw new Error(`${p} does not exist`);
  }
  if (!src.url) throw new Error(`no URL or local file for ${src.name}`);
  const dest = join(ctx.scratchDir, src.name);
  if (await exists(dest)) {
    const why = await reuseProblem(dest, src);
    if (!why) return dest; // fetched and verified by an earlier attempt of this key
    ctx.log.warn(`${src.name} left in scratch by an earlier attempt is not reused: ${why}; downloading it again`);
    await discard(ctx, dest);
  }
  const url = applyMirror(src.url, process.env.SMKE_MIRROR);
  ctx.log.info(`downloading ${redactUrl(url)}`);
  const res = await downloadFile(url, dest, {
    partPath: `${dest}.part`,
    sha256: src.sha256,
    md5: src.md5,
    headers: src.headers,
    signal: ctx.signal,
    seed: ctx.seed,
    onProgress: (d, t) => ctx.progress(d, t, `bytes of ${src.name}`),
    onRetry: (err, n, delay) => ctx.log.warn(`${src.name}: attempt ${n} failed (${err.message}); retrying in ${(delay / 1000).toFixed(1)} s`),
  });
  const bad = await formatProblem(dest, src.format);
  if (bad) {
    await discard(ctx, dest);
    throw new Error(
      `${redactUrl(url)} did not give the expected ${src.format} file (${bad}); it was discarded and the next attempt downloads it again (set \`retries\` on the stage to do that automatically)`,
    );
  }
  await writeFile(okPath(dest), JSON.stringify({ bytes: res.bytes, sha256: res.sha256, md5: res.md5 } satisfies Verified));
  return dest;
}

/**
 * Read an obtained file with `use`. Should `use` find it corrupt (an ArchiveError: a truncated
 * gzip stream, a bad tar header), a downloaded copy is discarded, so the next attempt fetches it
 * again instead of failing on the same bytes.
 */
export async function using<T>(ctx: StageContext, path: string, use: () => Promise<T>): Promise<T> {
  try {
    return await use();
  } catch (err) {
    if (err instanceof ArchiveError) {
      await discard(ctx, path);
      if (path.startsWith(ctx.scratchDir + sep)) err.message += '; the downloaded copy was discarded and the next attempt downloads it again';
    }
    throw err;
  }
}
