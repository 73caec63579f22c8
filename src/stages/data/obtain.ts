// Getting one source file for a dataset kind: a local copy when the user has
// one, otherwise a download into the scratch dir (resumable across attempts,
// SMKE_MIRROR applied). Shared by the dataset.* kinds.

import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { downloadFile } from '../../data/download.js';
import { applyMirror, redactUrl } from '../../data/http.js';
import type { StageContext } from '../kind.js';

export interface Source {
  /** File name in the scratch dir. */
  name: string;
  url?: string;
  /** A user-provided copy (project-relative or absolute); used when it exists. */
  local?: string;
  sha256?: string;
  headers?: Record<string, string>;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

export async function obtain(ctx: StageContext, src: Source): Promise<string> {
  if (src.local) {
    const p = resolve(ctx.projectDir, src.local);
    if (await exists(p)) return p;
    if (!src.url) throw new Error(`${p} does not exist`);
  }
  if (!src.url) throw new Error(`no URL or local file for ${src.name}`);
  const dest = join(ctx.scratchDir, src.name);
  if (await exists(dest)) return dest; // complete from an earlier attempt of this key (downloads land by rename)
  const url = applyMirror(src.url, process.env.SMKE_MIRROR);
  ctx.log.info(`downloading ${redactUrl(url)}`);
  await downloadFile(url, dest, {
    partPath: `${dest}.part`,
    sha256: src.sha256,
    headers: src.headers,
    signal: ctx.signal,
    seed: ctx.seed,
    onProgress: (d, t) => ctx.progress(d, t, `bytes of ${src.name}`),
    onRetry: (err, n, delay) => ctx.log.warn(`${src.name}: attempt ${n} failed (${err.message}); retrying in ${(delay / 1000).toFixed(1)} s`),
  });
  return dest;
}
