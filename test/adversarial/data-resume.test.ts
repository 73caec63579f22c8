// Adversarial servers against download resume (wrong data must never be
// published as success): each case continues a partial file against a server that lies
// or changes, and checks that what lands at the destination is exactly the
// resource (or that nothing lands and the error says why), never a splice.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { downloadFile, parseContentRange, type DownloadOptions } from '../../src/data/download-file.js';
import { downloadKind } from '../../src/stages/data/download.js';
import { makeCtx, tempDir, withDefaults } from '../data/ctx.js';
import { serveBytes, startServer, type TestServer } from '../data/server.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(() => srv.close());

const body = randomBytes(200_000);
const sha = createHash('sha256').update(body).digest('hex');
const HALF = 80_000;

/** A scratch dir holding a partial of `partial` bytes (and what was recorded of its origin). */
function partial(bytes: Buffer, meta?: { validator?: string; total?: number }): { dir: string; part: string; dest: string } {
  const dir = tempDir();
  const part = join(dir, 'f.part');
  writeFileSync(part, bytes);
  if (meta) writeFileSync(`${part}.meta`, JSON.stringify(meta));
  return { dir, part, dest: join(dir, 'f.bin') };
}

function dl(path: string, s: { part: string; dest: string }, opts: DownloadOptions = {}) {
  return downloadFile(`${srv.url}${path}`, s.dest, { partPath: s.part, retry: { baseDelayMs: 1, retries: 3 }, stallTimeoutMs: 2000, ...opts });
}

const rangeStart = (req: IncomingMessage) => Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? NaN);

/** Answer a range request with a 206 built by `lie` (start, end, total and the bytes sent), once; then serve honestly. */
function lyingOnce(
  lie: (start: number) => { headers: Record<string, string | number>; data: Buffer },
): (req: IncomingMessage, res: ServerResponse, n: number) => void {
  const honest = serveBytes(body);
  return (req, res, n) => {
    if (n > 1 || Number.isNaN(rangeStart(req))) {
      void honest(req, res, n);
      return;
    }
    const { headers, data } = lie(rangeStart(req));
    res.writeHead(206, headers);
    res.end(data);
  };
}

describe('a resumed download checks every piece against the partial and the total', () => {
  test.each([
    [
      'starts at 0 instead of where the partial ends (the reported case)',
      () => ({ headers: { 'content-range': `bytes 0-${body.length - 1}/${body.length}` }, data: body }),
    ],
    [
      'starts past where the partial ends',
      (s: number) => ({ headers: { 'content-range': `bytes ${s + 100}-${body.length - 1}/${body.length}` }, data: body.subarray(s + 100) }),
    ],
    [
      'starts before where the partial ends',
      (s: number) => ({ headers: { 'content-range': `bytes ${s - 100}-${body.length - 1}/${body.length}` }, data: body.subarray(s - 100) }),
    ],
    ['has no Content-Range', (s: number) => ({ headers: {}, data: body.subarray(s) })],
    ['has a malformed Content-Range', (s: number) => ({ headers: { 'content-range': `bytes ${s}-/${body.length}` }, data: body.subarray(s) })],
    ['has an end past its total', (s: number) => ({ headers: { 'content-range': `bytes ${s}-${body.length}/${body.length}` }, data: body.subarray(s) })],
    [
      'names a total other than the one the partial came from',
      (s: number) => ({
        headers: { 'content-range': `bytes ${s}-${body.length + 99}/${body.length + 100}` },
        data: Buffer.concat([body.subarray(s), Buffer.alloc(100)]),
      }),
    ],
    [
      'has a Content-Length other than its range',
      (s: number) => ({
        headers: { 'content-range': `bytes ${s}-${body.length - 1}/${body.length}`, 'content-length': body.length - s - 10 },
        data: body.subarray(s, body.length - 10),
      }),
    ],
    [
      'sends more bytes than its range (chunked, so no Content-Length stops them)',
      (s: number) => ({
        headers: { 'content-range': `bytes ${s}-${body.length - 1}/${body.length}` },
        data: Buffer.concat([body.subarray(s), Buffer.alloc(100, 7)]),
      }),
    ],
    [
      'carries another ETag than the partial (a server ignoring If-Range)',
      (s: number) => ({
        headers: { 'content-range': `bytes ${s}-${body.length - 1}/${body.length}`, etag: '"other"' },
        data: Buffer.alloc(body.length - s, 9),
      }),
    ],
  ])('a 206 that %s is not spliced: the partial is dropped and the file fetched whole', async (_name, lie) => {
    const path = `/lie-${Math.random().toString(36).slice(2)}`;
    srv.route(path, lyingOnce(lie));
    const s = partial(body.subarray(0, HALF), { validator: '"v1"', total: body.length });
    // No checksum given: only the resume checks stand between the lie and a published file.
    const r = await dl(path, s);
    expect(readFileSync(s.dest).equals(body)).toBe(true);
    expect(r.bytes).toBe(body.length);
    const hits = srv.hits.get(path)!;
    expect(hits[0]!.range).toBe(`bytes=${HALF}-`);
    expect(hits[1]!.range).toBeUndefined(); // started over from zero
    expect(readdirSync(s.dir)).toEqual(['f.bin']);
  });

  test('a server that always answers with the wrong range fails clearly and publishes nothing', async () => {
    srv.route('/always-wrong', (req, res) => {
      const s = Number.isNaN(rangeStart(req)) ? 0 : rangeStart(req);
      // Honest for a fresh request, cut at HALF; every resume gets bytes from 0.
      if (s === 0) {
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, HALF), () => res.socket?.destroy());
        return;
      }
      res.writeHead(206, { 'content-range': `bytes 0-${body.length - 1}/${body.length}`, 'content-length': body.length });
      res.end(body);
    });
    const s = partial(Buffer.alloc(0));
    await expect(dl('/always-wrong', s)).rejects.toThrow(
      /(asked for bytes from 80000, the server sent bytes 0-199999|closed after 80000 of 200000 bytes).*gave up after 4 attempts/,
    );
    expect(existsSync(s.dest)).toBe(false);
  });

  test('Content-Range total `*` is accepted, and the final size is checked against the total the partial came from', async () => {
    srv.route('/star', (req, res) => {
      const s = rangeStart(req);
      res.writeHead(206, { 'content-range': `bytes ${s}-${body.length - 1}/*` });
      res.end(body.subarray(s));
    });
    const ok = partial(body.subarray(0, HALF), { total: body.length });
    await dl('/star', ok);
    expect(readFileSync(ok.dest).equals(body)).toBe(true);

    // The same server, but the partial came from a longer file: the total is not reached, so it is not published as done.
    srv.route('/star-short', (req, res, n) => {
      if (n > 1) return serveBytes(body)(req, res, n);
      const s = rangeStart(req);
      res.writeHead(206, { 'content-range': `bytes ${s}-${body.length - 1}/*` });
      res.end(body.subarray(s));
    });
    const short = partial(body.subarray(0, HALF), { total: body.length + 500 });
    const r = await dl('/star-short', short);
    // The first answer ends 500 bytes short of the recorded total: asked again; the honest server then says the file is
    // 200000 bytes, not the 200500 the partial came from, so the partial is dropped and the file fetched whole.
    expect(r.bytes).toBe(body.length);
    expect(readFileSync(short.dest).equals(body)).toBe(true);
  });

  test('a 206 that covers less than the rest is kept and the rest asked for, never published early', async () => {
    srv.route('/chunks', (req, res) => {
      const s = Number.isNaN(rangeStart(req)) ? 0 : rangeStart(req);
      const end = Math.min(body.length - 1, s + 49_999);
      res.writeHead(206, { 'content-range': `bytes ${s}-${end}/${body.length}`, 'content-length': end - s + 1 });
      res.end(body.subarray(s, end + 1));
    });
    const s = partial(Buffer.alloc(0));
    // Four requests with retries = 0: a piece that made progress is not a failure.
    const r = await dl('/chunks', s, { retry: { baseDelayMs: 1, retries: 0 } });
    expect(readFileSync(s.dest).equals(body)).toBe(true);
    expect(r.attempts).toBe(4);
  });

  test('a 200 in reply to a Range request (Range ignored) starts over instead of appending', async () => {
    srv.route('/norange', (_req, res) => void res.writeHead(200, { 'content-length': body.length }).end(body));
    const s = partial(body.subarray(0, HALF), { total: body.length });
    const r = await dl('/norange', s);
    expect(r).toMatchObject({ attempts: 1, resumed: 0, bytes: body.length });
    expect(readFileSync(s.dest).equals(body)).toBe(true);
  });

  test('a partial longer than the resource (it shrank) is dropped before asking', async () => {
    const small = body.subarray(0, 50_000);
    srv.route('/shrunk', serveBytes(small));
    const s = partial(body.subarray(0, HALF), { total: body.length });
    await dl('/shrunk', s);
    expect(readFileSync(s.dest).equals(small)).toBe(true);
    // 416 from a server whose file is now exactly the partial's size, while the partial came from a longer file: not "complete".
    srv.route('/shrunk-416', serveBytes(body.subarray(0, HALF)));
    const s2 = partial(body.subarray(0, HALF), { total: body.length });
    const r = await dl('/shrunk-416', s2);
    expect(srv.hits.get('/shrunk-416')!.map((h) => h.range)).toEqual([`bytes=${HALF}-`, undefined]);
    expect(r.bytes).toBe(HALF);
  });

  test('a redirect during resume to a different (longer) file is caught by the total', async () => {
    const other = randomBytes(300_000);
    srv.route('/cdn-other', serveBytes(other));
    srv.route('/moving', (_req, res) => void res.writeHead(302, { location: '/cdn-other' }).end());
    const s = partial(body.subarray(0, HALF), { total: body.length });
    const r = await dl('/moving', s);
    // The 206 from the other file names a 300000-byte total: the 80000 bytes of the first file are not kept in front of it.
    expect(readFileSync(s.dest).equals(other)).toBe(true);
    expect(r.bytes).toBe(other.length);
  });

  test('a body cut short of its Content-Length reports the bytes that did arrive (and keeps them)', async () => {
    for (const [i, close] of (['destroy', 'end'] as const).entries()) {
      const path = `/short-${close}`;
      srv.route(path, (req, res, n) => {
        if (n > 1) return serveBytes(body)(req, res, n);
        res.writeHead(200, { 'content-length': body.length });
        // The last bytes and the reset arrive together: the reported case counted 0 of them.
        res.write(body.subarray(0, 1000), () => (close === 'destroy' ? res.socket?.destroy() : res.socket?.end()));
      });
      const s = partial(Buffer.alloc(0));
      const retries: string[] = [];
      await dl(path, s, { onRetry: (e) => void retries.push(e.message) });
      expect(retries[0], `case ${i}`).toMatch(/closed after 1000 of 200000 bytes/);
      expect(srv.hits.get(path)![1]!.range).toBe('bytes=1000-');
      expect(readFileSync(s.dest).equals(body)).toBe(true);
    }
    // Resumed: counted over the whole file.
    srv.route('/short-resumed', (req, res, n) => {
      if (n > 1) return serveBytes(body)(req, res, n);
      const st = rangeStart(req);
      res.writeHead(206, { 'content-range': `bytes ${st}-${body.length - 1}/${body.length}`, 'content-length': body.length - st });
      res.write(body.subarray(st, st + 1000), () => res.socket?.destroy());
    });
    const s = partial(body.subarray(0, HALF), { total: body.length });
    const retries: string[] = [];
    await dl('/short-resumed', s, { onRetry: (e) => void retries.push(e.message) });
    expect(retries[0]).toMatch(/closed after 81000 of 200000 bytes \(1000 in this response, resumed at 80000\)/);
    expect(readFileSync(s.dest).equals(body)).toBe(true);
  });

  test('a 2xx that is not a file (204) fails and publishes nothing', async () => {
    srv.route('/empty', (_req, res) => void res.writeHead(204).end());
    const s = partial(Buffer.alloc(0));
    await expect(dl('/empty', s)).rejects.toThrow(/HTTP 204 .*not a file body/);
    expect(existsSync(s.dest)).toBe(false);
  });

  test('through the download kind: a lying resume never reaches the output', async () => {
    srv.route(
      '/kind-lie.bin',
      lyingOnce(() => ({ headers: { 'content-range': `bytes 0-${body.length - 1}/${body.length}` }, data: body })),
    );
    const c = makeCtx();
    writeFileSync(join(c.scratchDir, 'kind-lie.bin.part'), body.subarray(0, HALF));
    writeFileSync(join(c.scratchDir, 'kind-lie.bin.part.meta'), JSON.stringify({ total: body.length }));
    await downloadKind.run(c, await withDefaults(downloadKind.params, { url: `${srv.url}/kind-lie.bin`, retry_delay: 0.01 }));
    expect(
      createHash('sha256')
        .update(readFileSync(join(c.outDir, 'kind-lie.bin')))
        .digest('hex'),
    ).toBe(sha);
    expect(c.logs.some((l) => /asked for bytes from 80000, the server sent bytes 0-199999.*discarded/.test(l.msg))).toBe(true);
  });

  test('Content-Range parsing accepts only well-formed, consistent ranges', () => {
    expect(parseContentRange('bytes 0-9/10')).toEqual({ start: 0, end: 9, total: 10 });
    expect(parseContentRange('bytes 5-9/*')).toEqual({ start: 5, end: 9, total: undefined });
    for (const bad of [undefined, '', 'bytes 9-5/10', 'bytes 0-10/10', 'bytes */10', 'items 0-9/10', 'bytes 0-9/10, 20-29/30', 'bytes -1-9/10']) {
      expect(parseContentRange(bad), String(bad)).toBeUndefined();
    }
  });
});
