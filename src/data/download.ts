// Downloading one file robustly: http(s) with resume (Range) after a dropped
// connection, retries with backoff and jitter, a stall timeout, size and
// checksum checks; file:// URLs are copied. Requests go through http-get.ts,
// the client the scrapers use too. The partial file lives at a path the caller
// chooses (a stage's scratch dir), so a retry of the whole stage resumes too.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage } from 'node:http';
import { discard, httpGet, HttpAgents, writeBody } from './http-get.js';
import { DEFAULT_RETRY, FetchError, backoffMs, networkError, redactUrl, sleep, statusError, type RetryPolicy } from './http.js';
import { Rng } from './rng.js';

export interface DownloadOptions {
  /** Where the partial download is kept between attempts (default `<dest>.part`). */
  partPath?: string;
  sha256?: string;
  md5?: string;
  /** Expected size in bytes. */
  size?: number;
  retry?: Partial<RetryPolicy>;
  /** Abort an attempt when no byte arrives for this long. */
  stallTimeoutMs?: number;
  userAgent?: string;
  /** Extra request headers (e.g. Authorization); never logged. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Called as bytes arrive (total is 0 when unknown). */
  onProgress?(bytes: number, total: number): void;
  /** Called before each retry, for logs. */
  onRetry?(err: FetchError, attempt: number, delayMs: number): void;
  seed?: number;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  md5: string;
  attempts: number;
  /** How many attempts continued a partial file with a Range request. */
  resumed: number;
}

export const DEFAULT_USER_AGENT = 'smke/0.1 (+https://github.com/smke; research dataset download)';

async function digestFile(path: string): Promise<{ sha256: string; md5: string; bytes: number }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    sha.update(chunk as Buffer);
    md5.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('hex'), bytes };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** The validator (strong ETag or Last-Modified) of the response a partial file came from, kept beside it. */
async function readValidator(part: string): Promise<string | undefined> {
  try {
    return (await readFile(`${part}.validator`, 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function writeValidator(part: string, value: string | null): Promise<void> {
  // Weak ETags may not be used with If-Range (RFC 9110 13.1.5).
  if (value && !value.startsWith('W/')) await writeFile(`${part}.validator`, value);
  else await rm(`${part}.validator`, { force: true });
}

/** `bytes a-b/total` -> total (undefined when `*`). */
function totalFromContentRange(h: string | undefined): number | undefined {
  const m = h && /\/(\d+)\s*$/.exec(h);
  return m ? Number(m[1]) : undefined;
}

/** One attempt: continue `part` from its current size. Throws FetchError, or a local (disk) error as it is. */
async function attempt(
  url: string,
  part: string,
  opts: DownloadOptions,
  expectedTotal: number | undefined,
  agents: HttpAgents,
): Promise<{ total?: number; resumed: boolean }> {
  const have = await sizeOf(part);
  const ctl = new AbortController();
  const onOuterAbort = () => ctl.abort(opts.signal!.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      ctl.abort(new Error('stalled'));
    }, opts.stallTimeoutMs ?? 60_000);
  };
  const headers: Record<string, string> = { 'user-agent': opts.userAgent ?? DEFAULT_USER_AGENT, 'accept-encoding': 'identity', ...opts.headers };
  if (have > 0) {
    headers.range = `bytes=${have}-`;
    // If-Range: should the file have changed upstream since the partial was fetched, the server sends
    // the whole new file (200) instead of splicing new bytes onto old ones.
    const validator = await readValidator(part);
    if (validator) headers['if-range'] = validator;
  }
  try {
    arm();
    let res: IncomingMessage;
    try {
      ({ res } = await httpGet(url, { agents, headers, signal: ctl.signal }));
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw networkError(err, url, stalled);
    }
    const status = res.statusCode ?? 0;
    let total: number | undefined;
    let append = false;
    if (status === 416 && have > 0) {
      // The part already holds everything the server has: nothing left to fetch.
      discard(res);
      const t = totalFromContentRange(res.headers['content-range']);
      if (t === have || expectedTotal === have) return { total: have, resumed: true };
      await rm(part, { force: true });
      throw new FetchError(`server refused to resume ${redactUrl(url)} at byte ${have}; starting over`, 'range_refused', true);
    }
    if (status === 206 && have > 0) {
      append = true;
      total = totalFromContentRange(res.headers['content-range']);
    } else if (status >= 200 && status <= 299) {
      // A 200 to a Range request means the server ignores ranges: start from zero.
      const len = res.headers['content-length'];
      total = len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined;
    } else {
      discard(res);
      throw statusError(status, url, res.headers['retry-after']);
    }
    let got = append ? have : 0;
    let fh;
    try {
      if (!append) await writeValidator(part, res.headers.etag ?? res.headers['last-modified'] ?? null);
      fh = await open(part, append ? 'a' : 'w');
    } catch (err) {
      res.destroy();
      throw err;
    }
    try {
      await writeBody(res, url, fh, (n) => {
        arm();
        got += n;
        opts.onProgress?.(got, total ?? expectedTotal ?? 0);
      });
      await fh.sync();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      // Our own stall timer cuts the body short too: report the stall, not a truncation.
      if (stalled) throw networkError(new Error('stalled'), url, true);
      // writeBody's FetchErrors pass through; a failed write or sync (disk full) is local and not retried.
      throw err;
    } finally {
      await fh.close();
    }
    if (total !== undefined && got < total) {
      throw new FetchError(`connection to ${redactUrl(url)} closed after ${got} of ${total} bytes`, 'truncated', true);
    }
    return { total, resumed: append };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}

async function copyFileUrl(url: string, part: string, opts: DownloadOptions): Promise<void> {
  const src = fileURLToPath(url);
  let total: number;
  try {
    total = (await stat(src)).size;
  } catch {
    throw new FetchError(`${src} does not exist (from ${url})`, 'not_found', false);
  }
  const fh = await open(part, 'w');
  let got = 0;
  try {
    for await (const chunk of createReadStream(src, { signal: opts.signal })) {
      await fh.write(chunk as Buffer);
      got += (chunk as Buffer).length;
      opts.onProgress?.(got, total);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Rename, or copy and remove when the partial lives on another filesystem than the destination. */
async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = `${to}.tmp-${process.pid}`;
    await copyFile(from, tmp);
    await rename(tmp, to);
    await rm(from, { force: true });
  }
}

/** Download `url` to `dest` (atomically: `dest` appears only when complete and verified). */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const policy = { ...DEFAULT_RETRY, ...opts.retry };
  const part = opts.partPath ?? `${dest}.part`;
  await mkdir(dirname(part), { recursive: true });
  await mkdir(dirname(dest), { recursive: true });
  const rng = new Rng(opts.seed ?? Date.now());
  let attempts = 0;
  let resumed = 0;
  let checksumFailures = 0;
  // This download's own keep-alive agents: a retry reuses the connection, and nothing is left open after.
  const agents = new HttpAgents();
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      attempts++;
      try {
        if (url.startsWith('file:')) await copyFileUrl(url, part, opts);
        else if (/^https?:/i.test(url)) {
          const r = await attempt(url, part, opts, opts.size, agents);
          if (r.resumed) resumed++;
        } else throw new FetchError(`unsupported URL scheme in ${redactUrl(url)} (use http, https or file)`, 'bad_url', false);

        const d = await digestFile(part);
        const problems: string[] = [];
        if (opts.size !== undefined && d.bytes !== opts.size) problems.push(`size ${d.bytes} bytes, expected ${opts.size}`);
        if (opts.sha256 && d.sha256 !== opts.sha256.toLowerCase()) problems.push(`sha256 ${d.sha256}, expected ${opts.sha256.toLowerCase()}`);
        if (opts.md5 && d.md5 !== opts.md5.toLowerCase()) problems.push(`md5 ${d.md5}, expected ${opts.md5.toLowerCase()}`);
        if (problems.length) {
          await rm(part, { force: true });
          await rm(`${part}.validator`, { force: true });
          // One fresh download rules out a corrupted transfer; a second mismatch means the file itself differs.
          if (++checksumFailures >= 2 || url.startsWith('file:')) {
            throw new FetchError(
              `${redactUrl(url)}: downloaded file does not match: ${problems.join('; ')}. The source changed or the expected value is wrong; check the URL and the checksum in the pipeline`,
              'checksum',
              false,
            );
          }
          throw new FetchError(`${redactUrl(url)}: ${problems.join('; ')}; downloading again`, 'checksum', true);
        }
        await moveFile(part, dest);
        await rm(`${part}.validator`, { force: true });
        return { path: dest, bytes: d.bytes, sha256: d.sha256, md5: d.md5, attempts, resumed };
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        // Network failures arrive as FetchErrors; anything else is local (disk full, permissions): retrying will not help.
        if (!(err instanceof FetchError)) throw err;
        const fe = err;
        if (!fe.retryable || attempts > policy.retries) {
          if (fe.retryable) fe.message += ` (gave up after ${attempts} attempts)`;
          throw fe;
        }
        const delay = fe.retryAfterMs ?? backoffMs(policy, attempts - 1, rng);
        opts.onRetry?.(fe, attempts, delay);
        await sleep(delay, opts.signal);
      }
    }
  } finally {
    agents.destroy();
  }
}
