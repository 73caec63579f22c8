// The one HTTP client of src/data: GET on node:http/https with keep-alive
// agents, used by file downloads (download-file.ts, streaming to disk) and the image
// scrapers (scrape.ts, reading into memory). Global fetch (undici) costs ~0.5 ms
// of CPU per request on this kind of machine against ~0.12 ms here: at hundreds
// of images a second on two cores that is a tenth of the budget, taken from the
// image decoders. Retry policy and error classification live in retry-policy.ts.

import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { FetchError, redactUrl } from './retry-policy.js';

/**
 * Keep-alive agents shared by the requests of one scrape or one download. destroy() closes their
 * idle sockets, which would otherwise keep the process alive: whoever makes agents destroys them.
 */
export class HttpAgents {
  readonly http = new http.Agent({ keepAlive: true, scheduling: 'lifo' });
  readonly https = new https.Agent({ keepAlive: true, scheduling: 'lifo' });
  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

export interface GetOptions {
  agents: HttpAgents;
  headers: Record<string, string>;
  /** Destroys the request when aborted; the abort reason is the error. */
  signal: AbortSignal;
  maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers that carry credentials: not sent on to another origin by a redirect (as fetch does). */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);

/**
 * One response, redirects followed with the same headers (Range and If-Range included), except that
 * credentials stop at the first redirect to another origin: a hub's token must not reach the CDN its
 * files redirect to. The caller reads (or resume()s / destroy()s) the body.
 */
export async function httpGet(url: string, opts: GetOptions): Promise<{ res: IncomingMessage; url: string }> {
  let current = url;
  let headers = opts.headers;
  for (let hop = 0; ; hop++) {
    const u = new URL(current);
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
    if (!mod) throw new FetchError(`${redactUrl(current)}: unsupported protocol ${u.protocol}`, 'bad_url', false);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = mod.get(u, { agent: mod === https ? opts.agents.https : opts.agents.http, headers, signal: opts.signal }, resolve);
      req.once('error', reject);
    });
    const loc = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || !loc) return { res, url: current };
    discard(res);
    if (hop >= (opts.maxRedirects ?? 20)) throw new FetchError(`${redactUrl(url)}: more than ${opts.maxRedirects ?? 20} redirects`, 'redirects', false);
    const next = new URL(loc, current);
    if (next.origin !== u.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.has(k.toLowerCase())));
    current = next.toString();
  }
}

/** Drop a response we do not want: a small body is drained so its connection can be reused; a big one closes it. */
export function discard(res: IncomingMessage): void {
  const len = Number(res.headers['content-length'] ?? NaN);
  if (len <= 65536) res.resume();
  else res.destroy();
}

function truncated(url: string, got: number, len: number): FetchError {
  return new FetchError(`${redactUrl(url)}: connection closed after ${got} of ${len || 'an unknown number of'} bytes`, 'truncated', true);
}

/**
 * The body of `res`, at most `maxBytes` (decoded), as one buffer. A body cut
 * short of its Content-Length is a retryable `truncated`; going over the limit
 * is a final `too_large`; other stream errors are rethrown as they are.
 */
export function readBody(res: IncomingMessage, url: string, maxBytes: number): Promise<Buffer> {
  const len = Number(res.headers['content-length'] ?? 0);
  const enc = String(res.headers['content-encoding'] ?? '')
    .trim()
    .toLowerCase();
  // We never ask for compression, but a server may send it anyway (as fetch would have decoded).
  const stream: NodeJS.ReadableStream =
    enc === 'gzip' || enc === 'x-gzip'
      ? res.pipe(createGunzip())
      : enc === 'deflate'
        ? res.pipe(createInflate())
        : enc === 'br'
          ? res.pipe(createBrotliDecompress())
          : res;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let wire = 0;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      res.destroy();
      reject(err);
    };
    const cut = (err: Error) => (len && wire < len ? truncated(url, wire, len) : err);
    if (stream !== res) {
      res.on('data', (c: Buffer) => void (wire += c.length));
      res.once('error', (err) => fail(cut(err)));
    }
    // A connection that goes away mid-body without an error event must not leave us waiting forever.
    res.once('close', () => {
      if (!res.complete) fail(cut(new Error('connection closed before the end of the body')));
    });
    stream.on('data', (c: Buffer) => {
      got += c.length;
      if (stream === res) wire = got;
      if (got > maxBytes) fail(new FetchError(`${redactUrl(url)} exceeds ${maxBytes} bytes`, 'too_large', false));
      else chunks.push(c);
    });
    stream.once('error', (err: Error) => fail(stream === res ? cut(err) : err));
    stream.once('end', () => {
      if (settled) return;
      settled = true;
      if (len && wire < len) reject(truncated(url, wire, len));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got));
    });
  });
}

/** Where a body goes (a FileHandle, or writes at a position). */
export interface ByteSink {
  write(chunk: Buffer): Promise<unknown>;
}

/** Bytes received but not yet written past which the response is paused (the disk is slower than the network). */
const WRITE_BACKLOG = 16 * 2 ** 20;

/**
 * Write the body of `res` to `fh` as it arrives, in order; returns the bytes written. The bytes are
 * kept as sent, never decoded: they are what a later Range request counts from. `onChunk` sees each
 * chunk's size once it is written (progress, a stall timer). A body that fails or ends before its end
 * (the connection reset, cut short of its Content-Length, the request aborted) is a retryable
 * `truncated` that says how many bytes did arrive (and are in the file); a failed write (disk full)
 * is rethrown as it is, for the caller not to retry.
 *
 * Call it in the same tick as the response arrived (`out` may still be opening): when a peer sends its
 * last bytes and resets the connection at once, a response nobody listens to yet, or one read by an
 * async iterator, drops the buffered bytes and reports only the error, so a download would lose (and
 * misreport) bytes that did arrive. Flowing 'data' events see every byte before the error.
 */
export function writeBody(res: IncomingMessage, url: string, out: ByteSink | Promise<ByteSink>, onChunk?: (bytes: number) => void): Promise<number> {
  const len = Number(res.headers['content-length'] ?? 0);
  return new Promise<number>((resolve, reject) => {
    let got = 0;
    let pending = 0;
    let fh: ByteSink | undefined;
    let writeError: unknown;
    let chain = Promise.resolve(out).then(
      (h) => void (fh = h),
      (err) => {
        writeError = err;
        res.destroy();
      },
    );
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      // Every byte received is written before we answer, so `got` is what the file holds.
      void chain.then(() => {
        if (writeError !== undefined) reject(writeError);
        else if (err !== undefined || !res.complete || (len && got < len)) reject(truncated(url, got, len));
        else resolve(got);
      });
    };
    res.on('data', (chunk: Buffer) => {
      pending += chunk.length;
      if (pending > WRITE_BACKLOG) res.pause();
      chain = chain.then(async () => {
        if (writeError !== undefined) return;
        try {
          await fh!.write(chunk);
        } catch (err) {
          writeError = err;
          res.destroy();
          settle(err);
          return;
        }
        got += chunk.length;
        pending -= chunk.length;
        onChunk?.(chunk.length);
        if (res.isPaused() && pending <= WRITE_BACKLOG / 2 && !settled) res.resume();
      });
    });
    res.once('end', () => settle());
    res.once('error', (err) => settle(err));
    // A connection that goes away mid-body without an error must not pass for a complete file.
    res.once('close', () => settle(res.complete ? undefined : new Error('closed')));
    // The out promise failing settles too, through the chain.
    void chain.then(() => writeError !== undefined && settle(writeError));
  });
}
