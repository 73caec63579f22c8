// Scraping images for an image-caption index: bounded global and per-host
// concurrency, a per-request timeout, retries for transient failures, and
// validation (HTML pages, placeholders, undecodable bytes) before an image is
// resized and kept. Progress is journaled in a state directory, so a rerun
// after a kill fetches only what is missing. Kept images are appended to one
// store file there (images.bin), each journal line saying where its image lies:
// creating a file per image cost ~0.3-0.6 ms of kernel CPU on this machine's
// ext4, a tenth of the whole per-image budget; an append costs ~12 µs.

import { addAbortListener, setMaxListeners } from 'node:events';
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_USER_AGENT } from './download-file.js';
import { discard, httpGet, HttpAgents, readBody } from './http-get.js';
import { FetchError, backoffMs, networkError, retryDelay, statusError } from './retry-policy.js';
import { prepareImage } from './image-prep.js';
import { Rng } from './rng.js';
import type { CaptionRow } from './tsv.js';

export interface ScrapeOptions {
  /** Journal and fetched images live here (a stage's scratch dir). */
  stateDir: string;
  concurrency: number;
  perHost: number;
  timeoutMs: number;
  /** Extra tries after a transient failure (network, 5xx, 429, timeout). */
  retries: number;
  retryDelayMs?: number;
  userAgent?: string;
  /** Shorter side after resizing (never enlarged). */
  imageSize: number;
  /** Images with a side below this are placeholders ("photo unavailable" 1-px GIFs and the like). */
  minSide: number;
  maxBytes: number;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
  seed?: number;
  /**
   * Called once for every row of `rows`, in their order, as soon as it and every row before it are
   * settled (rows resumed from the journal first). `data` is the stored image of an ok row settled in
   * this run while it is still held in memory; undefined otherwise (readStoredImage). Calls are
   * serialised; one that throws stops the scrape with its error. Lets a caller write its shards while
   * images are still being fetched instead of in a second pass.
   */
  onSettled?(row: CaptionRow, outcome: ScrapeOutcome, data: Buffer | undefined): void | Promise<void>;
  /** Bytes of images held for onSettled while they wait for an earlier row (default 64 MiB); beyond that they are read back from disk. */
  holdBytes?: number;
}

export interface ScrapeOutcome {
  row: number;
  ok: boolean;
  reason?: string;
  width?: number;
  height?: number;
  /** A kept image's byte range in the state dir's images.bin; absent for images an older version stored as images/ files. */
  offset?: number;
  size?: number;
}

export interface ScrapeStats {
  rows: number;
  attempted: number;
  ok: number;
  failed: Record<string, number>;
  /** Rows already settled by an earlier (killed or failed) run and not fetched again. */
  resumed: number;
}

const JOURNAL = 'journal.jsonl';
const STORE = 'images.bin';

/** Where versions before images.bin stored a kept row's image (still read when resuming their journals). */
export function imagePath(stateDir: string, row: number): string {
  return join(stateDir, 'images', `${Math.floor(row / 10000)}`, `${row}.jpg`);
}

/** The stored image of a kept row (outcome.ok), from images.bin or, for an older journal line, its own file. */
export function readStoredImage(stateDir: string, o: ScrapeOutcome): Buffer {
  if (o.offset === undefined || o.size === undefined) return readFileSync(imagePath(stateDir, o.row));
  const fd = openSync(join(stateDir, STORE), 'r');
  try {
    const buf = Buffer.allocUnsafe(o.size);
    for (let got = 0; got < o.size;) {
      const n = readSync(fd, buf, got, o.size - got, o.offset + got);
      if (n === 0) throw new Error(`${join(stateDir, STORE)} ends before row ${o.row}'s image (offset ${o.offset}, ${o.size} bytes)`);
      got += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** Append all of `data` at the end of the store. */
function appendAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.byteLength;) done += writeSync(fd, data, done, data.byteLength - done);
}

/** Outcomes recorded by earlier runs; a line cut by a kill is ignored (that row is fetched again). */
async function readJournal(stateDir: string): Promise<Map<number, ScrapeOutcome>> {
  const done = new Map<number, ScrapeOutcome>();
  let text: string;
  try {
    text = await readFile(join(stateDir, JOURNAL), 'utf8');
  } catch {
    return done;
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const o = JSON.parse(line) as ScrapeOutcome;
      if (typeof o.row === 'number') done.set(o.row, o);
    } catch {
      // the torn last line of a killed run
    }
  }
  // A line whose image does not lie whole in the store (the store lost its tail: a crash before the
  // page cache reached the disk) is not settled: that row is fetched again.
  let storeSize = 0;
  try {
    storeSize = statSync(join(stateDir, STORE)).size;
  } catch {
    // no store yet
  }
  for (const [row, o] of done) if (o.ok && o.offset !== undefined && (o.size === undefined || o.offset + o.size > storeSize)) done.delete(row);
  return done;
}

async function fetchImageBytes(url: string, opts: ScrapeOptions, agents: HttpAgents): Promise<Buffer> {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(opts.signal!.reason);
  // Also fires when the run was aborted before this fetch began.
  const abortListener = opts.signal ? addAbortListener(opts.signal, onAbort) : undefined;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort(new Error('timeout'));
  }, opts.timeoutMs);
  try {
    let res;
    try {
      ({ res } = await httpGet(url, { agents, headers: { 'user-agent': opts.userAgent ?? DEFAULT_USER_AGENT, accept: 'image/*' }, signal: ctl.signal }));
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw networkError(err, url, timedOut);
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      discard(res);
      throw statusError(status, url, res.headers['retry-after']);
    }
    const type = (res.headers['content-type'] ?? '').toLowerCase();
    // Dead image links often answer 200 with an HTML error or login page.
    if (type.startsWith('text/') || type.includes('html')) {
      discard(res);
      throw new FetchError(`${url} served ${type}, not an image`, 'html', false);
    }
    const len = Number(res.headers['content-length'] ?? 0);
    if (len > opts.maxBytes) {
      res.destroy();
      throw new FetchError(`${url} is ${len} bytes, over the limit`, 'too_large', false);
    }
    try {
      return await readBody(res, url, opts.maxBytes);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      // Our own timeout cuts the body short too: count it as the stall it is, not as a truncation.
      if (timedOut) throw networkError(new Error('timeout'), url, true);
      if (err instanceof FetchError) throw err;
      throw networkError(err, url, false);
    }
  } finally {
    clearTimeout(timer);
    abortListener?.[Symbol.dispose]();
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/** Fetch every row not settled yet; returns every row's outcome (old and new). */
export async function scrapeImages(rows: CaptionRow[], opts: ScrapeOptions): Promise<{ outcomes: Map<number, ScrapeOutcome>; stats: ScrapeStats }> {
  await mkdir(opts.stateDir, { recursive: true });
  const outcomes = await readJournal(opts.stateDir);
  const resumed = rows.filter((r) => outcomes.has(r.row)).length;
  // Positions in `rows` of the rows still to fetch.
  const todo: number[] = [];
  rows.forEach((r, i) => {
    if (!outcomes.has(r.row)) todo.push(i);
  });
  const rng = new Rng(opts.seed ?? 1);
  let settled = resumed;
  // Every in-flight request listens to the stage's signal; that many listeners is by design, not a leak.
  if (opts.signal) setMaxListeners(opts.concurrency * 2 + 20, opts.signal);
  const agents = new HttpAgents();
  const journalPath = join(opts.stateDir, JOURNAL);
  // A line torn by a kill must not swallow the next one: start appending on a fresh line.
  {
    const fh = await open(journalPath, 'a+');
    const { size } = await fh.stat();
    const last = Buffer.alloc(1);
    if (size > 0) await fh.read(last, 0, 1, size - 1);
    await fh.close();
    if (size > 0 && last[0] !== 0x0a) writeFileSync(journalPath, '\n', { flag: 'a' });
  }
  // Appended synchronously: one short line into the page cache costs a few microseconds, while an
  // async write would wait for a libuv thread behind sharp's decodes. One write per line, after
  // the image is in the store, so a journaled ok always has its image and a kill tears at most the last line.
  const journal = openSync(journalPath, 'a');
  // Images go to the store before their journal line; a tail cut by a kill is just never referenced.
  const store = openSync(join(opts.stateDir, STORE), 'a');
  let storeEnd = fstatSync(store).size;

  // In-order delivery to onSettled: `emitAt` is the first row not delivered yet; images of rows
  // settled ahead of it wait in `held` (bounded by holdBytes).
  const held = new Map<number, Buffer>();
  let heldBytes = 0;
  const holdLimit = opts.holdBytes ?? 64 << 20;
  let emitAt = 0;
  let delivery: Promise<void> = Promise.resolve();
  let failure: unknown;
  const deliver = () => {
    const cb = opts.onSettled;
    if (!cb) return;
    while (emitAt < rows.length) {
      const r = rows[emitAt]!;
      const o = outcomes.get(r.row);
      if (!o) break;
      const data = held.get(emitAt);
      if (data) {
        held.delete(emitAt);
        heldBytes -= data.length;
      }
      emitAt++;
      delivery = delivery
        .then(() => (failure ? undefined : cb(r, o, data)))
        .catch((err) => {
          failure ??= err;
        });
    }
  };
  deliver();

  const record = (i: number, o: ScrapeOutcome, data?: Buffer) => {
    outcomes.set(o.row, o);
    writeSync(journal, JSON.stringify(o) + '\n');
    if (data && opts.onSettled && (i === emitAt || heldBytes + data.length <= holdLimit)) {
      held.set(i, data);
      heldBytes += data.length;
    }
    deliver();
  };

  /** One row, retries included; the caller holds its global and per-host slots throughout. */
  const one = async (i: number): Promise<void> => {
    const r = rows[i]!;
    for (let attempt = 0; ; attempt++) {
      opts.signal?.throwIfAborted();
      let outcome: ScrapeOutcome | undefined;
      let kept: Buffer | undefined;
      let retry: FetchError | undefined;
      try {
        const bytes = await fetchImageBytes(r.url, opts, agents);
        const img = await prepareImage(bytes, { imageSize: opts.imageSize, minSide: opts.minSide });
        // Synchronous: a few KB into the page cache costs microseconds, while the async version would
        // queue behind sharp's decodes on libuv's 4 threads. The journal line, written after it, is
        // what makes the image count. No fsync: after a crash a rerun fetches again what is missing.
        const offset = storeEnd;
        appendAll(store, img.data);
        storeEnd += img.data.byteLength;
        kept = img.data;
        outcome = { row: r.row, ok: true, width: img.width, height: img.height, offset, size: img.data.byteLength };
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        // A bad URL or image is counted; a local failure (disk full, permissions) stops the stage instead
        // of quietly failing every remaining row.
        if (!(err instanceof FetchError)) throw err;
        const fe = err;
        if (fe.retryable && attempt < opts.retries) retry = fe;
        else outcome = { row: r.row, ok: false, reason: fe.reason };
      }
      if (outcome) {
        record(i, outcome, kept);
        opts.onProgress?.(++settled, rows.length);
        return;
      }
      await retryDelay(
        retry?.retryAfterMs ?? backoffMs({ retries: opts.retries, baseDelayMs: opts.retryDelayMs ?? 500, maxDelayMs: 10_000 }, attempt, rng),
        opts.signal,
      );
    }
  };

  // Dispatch in index order (a `limit` run and a full run agree on what is fetched first), but a row
  // whose host is at its limit waits aside instead of holding a global slot: one slow or popular host
  // must not stall the others (head-of-line blocking).
  const hostActive = new Map<string, number>();
  // Per host, rows (positions in `rows`) set aside in index order (a head index, not shift(): one host may hold millions).
  const deferred = new Map<string, { rows: number[]; head: number }>();
  let cursor = 0;
  const free = (h: string) => (hostActive.get(h) ?? 0) < opts.perHost;
  // Hosts that have rows set aside and just got a slot back: found in O(1), however many hosts wait.
  const ready: string[] = [];
  const nextRow = (): number | undefined => {
    while (ready.length) {
      const h = ready.pop()!;
      const q = deferred.get(h);
      if (q && free(h)) {
        const r = q.rows[q.head++]!;
        if (q.head === q.rows.length) deferred.delete(h);
        return r;
      }
    }
    while (cursor < todo.length) {
      const i = todo[cursor++]!;
      const h = hostOf(rows[i]!.url);
      if (free(h)) return i;
      let q = deferred.get(h);
      if (!q) deferred.set(h, (q = { rows: [], head: 0 }));
      q.rows.push(i);
    }
    return undefined;
  };
  await new Promise<void>((resolveAll) => {
    let active = 0;
    const pump = () => {
      while (!failure && active < opts.concurrency) {
        const i = nextRow();
        if (i === undefined) break;
        const h = hostOf(rows[i]!.url);
        hostActive.set(h, (hostActive.get(h) ?? 0) + 1);
        active++;
        one(i)
          .catch((err) => {
            failure ??= err;
          })
          .finally(() => {
            hostActive.set(h, hostActive.get(h)! - 1);
            if (deferred.has(h)) ready.push(h);
            active--;
            pump();
          });
      }
      if (active === 0) resolveAll();
    };
    pump();
  });
  agents.destroy();
  closeSync(journal);
  closeSync(store);
  await delivery;
  if (failure) throw failure;

  const stats: ScrapeStats = { rows: rows.length, attempted: rows.length, ok: 0, failed: {}, resumed };
  for (const r of rows) {
    const o = outcomes.get(r.row)!;
    if (o.ok) stats.ok++;
    else stats.failed[o.reason ?? 'error'] = (stats.failed[o.reason ?? 'error'] ?? 0) + 1;
  }
  return { outcomes, stats };
}
