// Downloading one file robustly: http(s) with resume (Range) after a dropped
// connection, retries with backoff and jitter, a stall timeout, size and
// checksum checks; file:// URLs are copied. Requests go through http-get.ts,
// the client the scrapers use too. The partial file lives at a path the caller
// chooses (a stage's scratch dir), so a retry of the whole stage resumes too.

import { createHash } from 'node:crypto';
import { addAbortListener } from 'node:events';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage } from 'node:http';
import { discard, httpGet, HttpAgents, writeBody, type ByteSink } from './http-get.js';
import { DEFAULT_RETRY, FetchError, backoffMs, networkError, redactUrl, retryDelay, statusError, type RetryPolicy } from './retry-policy.js';
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

/** sha256, md5 and size of a file, in one read. */
export async function digestFile(path: string): Promise<{ sha256: string; md5: string; bytes: number }> {
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

/**
 * What is known of the response a partial file came from, kept beside it (`<part>.meta`): its
 * validator (strong ETag or Last-Modified), for If-Range and to notice a changed resource, and the
 * resource's total size, which every later piece must agree with.
 */
interface PartMeta {
  validator?: string;
  total?: number;
}

const metaPath = (part: string) => `${part}.meta`;

async function readMeta(part: string): Promise<PartMeta> {
  try {
    const m = JSON.parse(await readFile(metaPath(part), 'utf8')) as PartMeta;
    return {
      validator: typeof m.validator === 'string' && m.validator ? m.validator : undefined,
      total: Number.isSafeInteger(m.total) && m.total! >= 0 ? m.total : undefined,
    };
  } catch {
    return {};
  }
}

async function writeMeta(part: string, meta: PartMeta): Promise<void> {
  await writeFile(metaPath(part), JSON.stringify(meta));
}

/** Forget a partial file: the next attempt starts from zero. */
async function dropPart(part: string): Promise<void> {
  await rm(part, { force: true });
  await rm(metaPath(part), { force: true });
}

/** A strong validator of `res` (weak ETags may not be used with If-Range, RFC 9110 13.1.5). */
function validatorOf(headers: IncomingMessage['headers']): string | undefined {
  const v = headers.etag ?? headers['last-modified'];
  return v && !v.startsWith('W/') ? v : undefined;
}

export interface ContentRange {
  start: number;
  end: number;
  /** undefined for `*` (the server does not know). */
  total?: number;
}

/** `bytes a-b/total` (total may be `*`); undefined when malformed or inconsistent. */
export function parseContentRange(h: string | undefined): ContentRange | undefined {
  const m = h && /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(h);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (![start, end, total ?? 0].every(Number.isSafeInteger) || end < start || (total !== undefined && end >= total)) return undefined;
  return { start, end, total };
}

/** `bytes *\/total` of a 416 (undefined when absent or malformed). */
function unsatisfiedTotal(h: string | undefined): number | undefined {
  const m = h && /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(h);
  return m ? Number(m[1]) : undefined;
}

/** A mismatch that makes the partial file worthless: it is dropped and the next attempt starts over. */
async function restart(part: string, url: string, why: string, reason = 'resume_mismatch'): Promise<FetchError> {
  await dropPart(part);
  return new FetchError(`${redactUrl(url)}: ${why}; the partial file was discarded, starting over`, reason, true);
}

/**
 * One attempt: continue `part` from its current size. Throws FetchError, or a local (disk) error as it
 * is. Every piece is checked before it is kept: a 206 must start exactly where the partial file ends,
 * carry a well-formed Content-Range whose total agrees with what earlier responses said, and deliver
 * exactly the bytes its range names; the file must not outgrow the total. A partial that cannot be
 * continued safely is dropped (retryable), never spliced.
 */
async function attempt(
  url: string,
  part: string,
  opts: DownloadOptions,
  expectedTotal: number | undefined,
  agents: HttpAgents,
): Promise<{ total?: number; resumed: boolean }> {
  let have = await sizeOf(part);
  let meta = have > 0 ? await readMeta(part) : {};
  const known = meta.total ?? expectedTotal;
  if (have > 0 && known !== undefined && have > known) {
    // Longer than the whole file: nothing in it can be trusted.
    await dropPart(part);
    have = 0;
    meta = {};
  }
  const ctl = new AbortController();
  const onOuterAbort = () => ctl.abort(opts.signal!.reason);
  // Also fires when the outer signal was aborted before this download began.
  const outerListener = opts.signal ? addAbortListener(opts.signal, onOuterAbort) : undefined;
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
    if (meta.validator) headers['if-range'] = meta.validator;
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
    const validator = validatorOf(res.headers);
    const lenHeader = res.headers['content-length'];
    const length = lenHeader !== undefined && /^\d+$/.test(lenHeader) ? Number(lenHeader) : undefined;
    if (status === 416 && have > 0) {
      discard(res);
      // The server has no byte at `have`: complete only if everything known agrees the file is `have` bytes long.
      const t = unsatisfiedTotal(res.headers['content-range']);
      if (t === have && (meta.total ?? have) === have && (expectedTotal ?? have) === have) return { total: have, resumed: true };
      throw await restart(
        part,
        url,
        `server refused to resume at byte ${have} (it reports ${t ?? 'no'} total size${meta.total !== undefined ? `, the partial came from a ${meta.total}-byte file` : ''})`,
        'range_refused',
      );
    }
    let total: number | undefined;
    let from: number;
    /** Bytes this response must deliver, when known. */
    let expectBody: number | undefined;
    if (status === 206) {
      const cr = parseContentRange(res.headers['content-range']);
      const bad = (why: string) => {
        res.destroy();
        return restart(part, url, why);
      };
      if (!cr) throw await bad(`206 with a missing or malformed Content-Range (${JSON.stringify(res.headers['content-range'] ?? null)})`);
      if (cr.start !== have) throw await bad(`asked for bytes from ${have}, the server sent bytes ${cr.start}-${cr.end}`);
      if (length !== undefined && length !== cr.end - cr.start + 1)
        throw await bad(`Content-Range ${cr.start}-${cr.end} names ${cr.end - cr.start + 1} bytes but Content-Length is ${length}`);
      if (have > 0 && cr.total !== undefined && meta.total !== undefined && cr.total !== meta.total)
        throw await bad(`the file is now ${cr.total} bytes, it was ${meta.total} when the partial was fetched (it changed upstream)`);
      if (have > 0 && validator && meta.validator && validator !== meta.validator)
        throw await bad(`the file changed upstream (validator ${meta.validator} -> ${validator})`);
      total = cr.total ?? meta.total;
      from = have;
      expectBody = cr.end - cr.start + 1;
      if (have === 0) meta = { validator, total };
      else meta = { validator: meta.validator ?? validator, total };
    } else if (status === 200) {
      // A 200 to a Range request means the server ignores ranges (or If-Range found a new version): start from zero.
      total = length;
      from = 0;
      expectBody = length;
      meta = { validator, total };
    } else if (status >= 200 && status <= 299) {
      discard(res);
      throw new FetchError(`HTTP ${status} from ${redactUrl(url)}: not a file body`, `http_${status}`, false);
    } else {
      discard(res);
      throw statusError(status, url, res.headers['retry-after']);
    }
    // Started in this tick, before any await: bytes that arrive with a reset are not lost (writeBody).
    const opened = (async () => {
      await writeMeta(part, meta);
      return open(part, from > 0 ? 'r+' : 'w');
    })();
    let got = 0;
    const body = writeBody(res, url, positioned(opened, from), (n) => {
      arm();
      got += n;
      opts.onProgress?.(from + got, total ?? expectedTotal ?? 0);
    });
    try {
      await body;
      const fh = await opened;
      await fh.sync();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      // Our own stall timer cuts the body short too: report the stall, not a truncation.
      if (stalled) throw networkError(new Error('stalled'), url, true);
      if (err instanceof FetchError && err.reason === 'truncated') {
        // The bytes that did arrive are in the file: say so, counted over the whole file.
        const of = total ?? (expectBody !== undefined ? from + expectBody : undefined);
        throw new FetchError(
          `connection to ${redactUrl(url)} closed after ${from + got} of ${of ?? 'an unknown number of'} bytes${from > 0 ? ` (${got} in this response, resumed at ${from})` : ''}`,
          'truncated',
          true,
        );
      }
      // A failed write or sync (disk full) is local and not retried.
      throw err;
    } finally {
      await (await opened.catch(() => undefined))?.close();
    }
    if (expectBody !== undefined && got > expectBody) throw await restart(part, url, `the server sent ${got} bytes where it announced ${expectBody}`);
    if (expectBody !== undefined && got < expectBody) {
      throw new FetchError(`connection to ${redactUrl(url)} closed after ${from + got} of ${total ?? from + expectBody} bytes`, 'truncated', true);
    }
    const size = from + got;
    if (total !== undefined && size > total) throw await restart(part, url, `the file grew to ${size} bytes, past the ${total} the server announced`);
    if (total !== undefined && size < total) {
      // A 206 for less than the rest (allowed): the next attempt asks for the remainder.
      throw new FetchError(`${redactUrl(url)}: ${size} of ${total} bytes so far; asking for the rest`, 'partial_range', true);
    }
    return { total, resumed: from > 0 };
  } finally {
    clearTimeout(timer);
    outerListener?.[Symbol.dispose]();
  }
}

/** Writes that land at `start` onwards, after cutting the file to exactly `start` (whatever an interrupted write left past it). */
function positioned(opened: Promise<FileHandle>, start: number): Promise<ByteSink> {
  return opened.then(async (fh) => {
    await fh.truncate(start);
    let pos = start;
    return {
      write: async (chunk: Buffer) => {
        const r = await fh.write(chunk, 0, chunk.length, pos);
        pos += r.bytesWritten;
      },
    };
  });
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
  if (got !== total) throw new FetchError(`${src} changed while it was copied (${got} bytes read, ${total} expected)`, 'changed', true);
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
  /** Failed requests; a 206 that covered only part of the rest made progress and is not one. */
  let failures = 0;
  let resumed = 0;
  let checksumFailures = 0;
  // This download's own keep-alive agents: a retry reuses the connection, and nothing is left open after.
  const agents = new HttpAgents();
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      attempts++;
      try {
        let total: number | undefined;
        if (url.startsWith('file:')) await copyFileUrl(url, part, opts);
        else if (/^https?:/i.test(url)) {
          const r = await attempt(url, part, opts, opts.size, agents);
          if (r.resumed) resumed++;
          total = r.total;
        } else throw new FetchError(`unsupported URL scheme in ${redactUrl(url)} (use http, https or file)`, 'bad_url', false);

        const d = await digestFile(part);
        const problems: string[] = [];
        // The server's own total is checked always, with or without an expected size or digest.
        if (total !== undefined && d.bytes !== total) problems.push(`size ${d.bytes} bytes, the server announced ${total}`);
        if (opts.size !== undefined && d.bytes !== opts.size) problems.push(`size ${d.bytes} bytes, expected ${opts.size}`);
        if (opts.sha256 && d.sha256 !== opts.sha256.toLowerCase()) problems.push(`sha256 ${d.sha256}, expected ${opts.sha256.toLowerCase()}`);
        if (opts.md5 && d.md5 !== opts.md5.toLowerCase()) problems.push(`md5 ${d.md5}, expected ${opts.md5.toLowerCase()}`);
        if (problems.length) {
          await dropPart(part);
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
        await rm(metaPath(part), { force: true });
        return { path: dest, bytes: d.bytes, sha256: d.sha256, md5: d.md5, attempts, resumed };
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        // Network failures arrive as FetchErrors; anything else is local (disk full, permissions): retrying will not help.
        if (!(err instanceof FetchError)) throw err;
        const fe = err;
        if (fe.reason === 'partial_range') continue; // the part grew: ask for the rest at once
        if (!fe.retryable || ++failures > policy.retries) {
          if (fe.retryable) fe.message += ` (gave up after ${attempts} attempts)`;
          throw fe;
        }
        const delay = fe.retryAfterMs ?? backoffMs(policy, failures - 1, rng);
        opts.onRetry?.(fe, attempts, delay);
        await retryDelay(delay, opts.signal);
      }
    }
  } finally {
    agents.destroy();
  }
}
