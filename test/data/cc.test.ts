import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ImageDataset } from '../../src/data/image-dataset.js';
import { cc12mKind, cc3mKind } from '../../src/stages/data/cc.js';
import { makeCtx, tempDir, withDefaults, type TestCtx } from './ctx.js';
import { dropAfter, serveBytes, startServer, type TestServer } from './server.js';

let srv: TestServer;
let jpeg: Buffer;
let inFlight = 0;
let peak = 0;

const FAST = { timeout: 0.5, retry_delay: 0.01, image_size: 32, concurrency: 8, per_host: 3 };

beforeAll(async () => {
  srv = await startServer();
  jpeg = await sharp({ create: { width: 120, height: 90, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .jpeg()
    .toBuffer();
  for (let i = 0; i < 12; i++) {
    srv.route(`/img/${i}.jpg`, async (req, res, n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 15));
      inFlight--;
      serveBytes(jpeg, 'image/jpeg')(req, res, n);
    });
  }
  srv.route('/html', (_q, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>gone</html>'));
  srv.route('/html-as-jpeg.jpg', (_q, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end('<!DOCTYPE html><html>removed</html>'));
  const pixel = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } })
    .gif()
    .toBuffer();
  srv.route('/placeholder.gif', serveBytes(pixel, 'image/gif'));
  srv.route('/corrupt.jpg', serveBytes(jpeg.subarray(0, 300), 'image/jpeg'));
  srv.route('/garbage.jpg', serveBytes(Buffer.from('definitely not an image, just bytes'), 'image/jpeg'));
  srv.route('/err500', (_q, res) => void res.writeHead(500).end());
  srv.route('/flaky.jpg', (req, res, n) => (n === 1 ? void res.writeHead(503).end() : serveBytes(jpeg, 'image/jpeg')(req, res, n)));
  srv.route('/slow.jpg', () => {
    /* never answers: the timeout must fire */
  });
});
afterAll(() => srv.close());

function cc3mTsv(dir: string): string {
  const u = srv.url;
  const rows = [
    ...Array.from({ length: 10 }, (_, i) => `a red box number ${i}\t${u}/img/${i}.jpg`),
    `an html page\t${u}/html`,
    `html served as an image\t${u}/html-as-jpeg.jpg`,
    `a placeholder\t${u}/placeholder.gif`,
    `a truncated jpeg\t${u}/corrupt.jpg`,
    `garbage bytes\t${u}/garbage.jpg`,
    `gone\t${u}/nothing-here.jpg`,
    `server error\t${u}/err500`,
    `flaky\t${u}/flaky.jpg`,
    `slow\t${u}/slow.jpg`,
    `no tab in this row`,
    `bad url\tftp://example.org/x.jpg`,
    `\t${u}/img/11.jpg`,
    `too\tmany\tcolumns`,
  ];
  const p = join(dir, 'Train-GCC-training.tsv');
  writeFileSync(p, rows.join('\n') + '\n');
  return p;
}

const ctxs: TestCtx[] = [];
afterAll(() => ctxs.forEach((c) => c.cleanup()));

describe('dataset.cc3m', () => {
  test('scrapes, drops and counts every kind of bad input, keeps good images resized, never crashes', async () => {
    const dir = tempDir();
    const c = makeCtx({ root: dir, projectDir: dir });
    ctxs.push(c);
    cc3mTsv(dir);
    const params = await withDefaults(cc3mKind.params, { tsv: 'Train-GCC-training.tsv', ...FAST, retries: 1 });
    expect(cc3mKind.inputs!(params)).toEqual(['Train-GCC-training.tsv']);
    peak = 0;
    await cc3mKind.run(c, params);
    const stats = JSON.parse(readFileSync(join(c.outDir, 'stats.json'), 'utf8'));
    expect(stats).toMatchObject({
      attempted: 19,
      ok: 11,
      failed: { html: 2, placeholder: 1, decode_error: 2, http_404: 1, http_500: 1, timeout: 1 },
      malformed_rows: 4,
      malformed_by_reason: { wrong_column_count: 2, bad_url: 1, empty_caption: 1 },
    });
    expect(srv.hits.get('/err500')).toHaveLength(2); // retried once
    expect(srv.hits.get('/nothing-here.jpg')).toHaveLength(1); // 404 is final
    expect(srv.hits.get('/img/0.jpg')![0]!.ua).toMatch(/^smke\//);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);

    const ds = await ImageDataset.open(join(c.outDir, 'pairs'), 'image-text');
    const recs = await ds.records('train');
    expect(recs).toHaveLength(11);
    expect(recs[0]).toMatchObject({ id: 'cc3m-000000000', captions: ['a red box number 0'], width: 43, height: 32 });
    expect(recs.at(-1)!.captions).toEqual(['flaky']);
    const meta = await sharp(await ds.readImage(recs[3]!)).metadata();
    expect([meta.format, meta.height]).toEqual(['jpeg', 32]);
    expect(c.metrics.find((m) => m.name === 'ok')!.value).toBe(11);
  });

  test('a rerun after a kill fetches only what is missing', async () => {
    const dir = tempDir();
    const tsv = join(dir, 'idx.tsv');
    const u = srv.url;
    for (let i = 0; i < 10; i++) srv.route(`/r/${i}.jpg`, serveBytes(jpeg, 'image/jpeg'));
    writeFileSync(tsv, Array.from({ length: 10 }, (_, i) => `caption ${i}\t${u}/r/${i}.jpg`).join('\n'));
    const params = await withDefaults(cc3mKind.params, { tsv, ...FAST, concurrency: 2, per_host: 2 });
    const first = makeCtx({ root: dir });
    first.progress = (done) => {
      if (done >= 4) first.controller.abort(new Error('killed'));
    };
    await expect(cc3mKind.run(first, params)).rejects.toThrow('killed');
    const fetchedBefore = [...Array(10).keys()].filter((i) => srv.hits.has(`/r/${i}.jpg`)).length;
    expect(fetchedBefore).toBeGreaterThanOrEqual(4);
    expect(fetchedBefore).toBeLessThan(10);
    const settled = readFileSync(join(first.scratchDir, 'scrape/journal.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).row as number);
    expect(settled.length).toBeGreaterThanOrEqual(4);

    // Same scratch dir (same key), fresh output dir: what the runtime gives a retried attempt.
    const second = makeCtx({ root: dir, attempt: 2 });
    ctxs.push(second);
    await cc3mKind.run(second, params);
    // Rows settled before the kill are not fetched again; only the ones in flight at the kill are (at most `concurrency`).
    for (const i of settled) expect(srv.hits.get(`/r/${i}.jpg`), `row ${i}`).toHaveLength(1);
    const total = [...Array(10).keys()].reduce((n, i) => n + (srv.hits.get(`/r/${i}.jpg`)?.length ?? 0), 0);
    expect(total).toBeLessThanOrEqual(10 + 2);
    const stats = JSON.parse(readFileSync(join(second.outDir, 'stats.json'), 'utf8'));
    expect(stats.ok).toBe(10);
    expect(stats.resumed).toBeGreaterThanOrEqual(4);
    expect(second.logs.some((l) => /resumed: \d+ rows/.test(l.msg))).toBe(true);
  });

  test('a journal line torn by a kill is ignored: that row is fetched again, settled rows are not', async () => {
    const { scrapeImages } = await import('../../src/data/scrape.js');
    const { mkdirSync } = await import('node:fs');
    const dir = tempDir();
    for (let i = 0; i < 3; i++) srv.route(`/t/${i}.jpg`, serveBytes(jpeg, 'image/jpeg'));
    const rows = [0, 1, 2].map((i) => ({ row: i, url: `${srv.url}/t/${i}.jpg`, caption: `c${i}` }));
    mkdirSync(join(dir, 'images'), { recursive: true });
    // Row 0 settled as failed earlier (a 404 then); row 1's line was cut mid-write.
    writeFileSync(join(dir, 'journal.jsonl'), '{"row":0,"ok":false,"reason":"http_404"}\n{"row":1,"ok":tr');
    const { stats } = await scrapeImages(rows, {
      stateDir: dir,
      concurrency: 2,
      perHost: 2,
      timeoutMs: 2000,
      retries: 0,
      imageSize: 32,
      minSide: 10,
      maxBytes: 1e7,
    });
    expect(srv.hits.has('/t/0.jpg')).toBe(false);
    expect(srv.hits.get('/t/1.jpg')).toHaveLength(1);
    expect(stats).toMatchObject({ ok: 2, failed: { http_404: 1 }, resumed: 1 });
    // The next run finds every row settled: the lines written after the torn one are intact.
    const again = await scrapeImages(rows, {
      stateDir: dir,
      concurrency: 2,
      perHost: 2,
      timeoutMs: 2000,
      retries: 0,
      imageSize: 32,
      minSide: 10,
      maxBytes: 1e7,
    });
    expect(again.stats.resumed).toBe(3);
    expect(srv.hits.get('/t/1.jpg')).toHaveLength(1);
  });

  test('redirects are followed; a redirect loop, a cut body and a mid-body stall are counted; a compressed body is decoded', async () => {
    const { scrapeImages } = await import('../../src/data/scrape.js');
    const { gzipSync } = await import('node:zlib');
    const dir = tempDir();
    srv.route('/h/moved.jpg', (_q, res) => void res.writeHead(302, { location: '/h/target.jpg' }).end());
    srv.route('/h/target.jpg', serveBytes(jpeg, 'image/jpeg'));
    srv.route('/h/loop.jpg', (_q, res) => void res.writeHead(301, { location: `${srv.url}/h/loop.jpg` }).end());
    srv.route('/h/gz.jpg', (_q, res) => void res.writeHead(200, { 'content-type': 'image/jpeg', 'content-encoding': 'gzip' }).end(gzipSync(jpeg)));
    srv.route('/h/cut.jpg', dropAfter(jpeg, 100));
    // Headers and a first chunk, then nothing: the timeout must fire mid-body and count as one.
    srv.route(
      '/h/stall.jpg',
      (_q, res) => void res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpeg.length }).write(jpeg.subarray(0, 100)),
    );
    const rows = ['moved', 'loop', 'gz', 'cut', 'stall'].map((p, i) => ({ row: i, url: `${srv.url}/h/${p}.jpg`, caption: p }));
    const { outcomes, stats } = await scrapeImages(rows, {
      stateDir: dir,
      concurrency: 5,
      perHost: 5,
      timeoutMs: 400,
      retries: 1,
      retryDelayMs: 1,
      imageSize: 32,
      minSide: 10,
      maxBytes: 1e7,
    });
    expect(stats).toMatchObject({ ok: 2, failed: { redirects: 1, truncated: 1, timeout: 1 } });
    expect(outcomes.get(0)).toMatchObject({ ok: true, width: 43, height: 32 });
    expect(outcomes.get(2)).toMatchObject({ ok: true, width: 43, height: 32 });
    expect(srv.hits.get('/h/cut.jpg')).toHaveLength(2); // a cut body is worth another try
    expect(srv.hits.get('/h/loop.jpg')!.length).toBeGreaterThan(5);
  });

  test('onSettled sees every row once, in index order, resumed rows first; images beyond holdBytes are left on disk', async () => {
    const { scrapeImages, readStoredImage } = await import('../../src/data/scrape.js');
    const { mkdirSync } = await import('node:fs');
    const dir = tempDir();
    // Row 0 is slow, so rows after it settle first and must wait for it.
    srv.route('/o/slow.jpg', async (req, res, n) => {
      await new Promise((r) => setTimeout(r, 150));
      serveBytes(jpeg, 'image/jpeg')(req, res, n);
    });
    for (let i = 1; i < 8; i++) srv.route(`/o/${i}.jpg`, serveBytes(jpeg, 'image/jpeg'));
    const rows = [
      { row: 3, url: `${srv.url}/o/slow.jpg`, caption: 's' },
      ...[1, 2, 3, 4, 5, 6, 7].map((i) => ({ row: 10 + i, url: i === 4 ? `${srv.url}/o/none.jpg` : `${srv.url}/o/${i}.jpg`, caption: `c${i}` })),
    ];
    for (const holdBytes of [undefined, 0]) {
      const seen: { row: number; ok: boolean; data: boolean }[] = [];
      const stateDir = join(dir, `h${holdBytes}`);
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(join(stateDir, 'journal.jsonl'), '{"row":11,"ok":false,"reason":"http_404"}\n');
      await scrapeImages(rows, {
        stateDir,
        concurrency: 8,
        perHost: 8,
        timeoutMs: 2000,
        retries: 0,
        imageSize: 32,
        minSide: 10,
        maxBytes: 1e7,
        holdBytes,
        onSettled: async (r, o, data) => {
          await new Promise((ok) => setTimeout(ok, 2)); // a slow consumer does not reorder anything
          if (data) expect(data.equals(readStoredImage(stateDir, o))).toBe(true);
          seen.push({ row: r.row, ok: o.ok, data: data !== undefined });
        },
      });
      expect(seen.map((s) => s.row)).toEqual(rows.map((r) => r.row));
      expect(seen.filter((s) => !s.ok).map((s) => s.row)).toEqual([11, 14]);
      // Held in memory by default; with no room, only the row at the head of the order keeps its bytes.
      expect(seen.filter((s) => s.ok && !s.data).length).toBe(holdBytes === 0 ? 5 : 0);
    }
  });

  test('resuming: image files of an older journal are still read; a line whose image the store lost is fetched again', async () => {
    const { scrapeImages, readStoredImage, imagePath } = await import('../../src/data/scrape.js');
    const { mkdirSync } = await import('node:fs');
    const dir = tempDir();
    for (let i = 0; i < 3; i++) srv.route(`/v/${i}.jpg`, serveBytes(jpeg, 'image/jpeg'));
    const rows = [0, 1, 2].map((i) => ({ row: i, url: `${srv.url}/v/${i}.jpg`, caption: `c${i}` }));
    // Row 0: kept by a version that wrote one file per image. Row 1: its line points past the end of the store.
    const legacy = Buffer.from('an image stored the old way');
    mkdirSync(join(imagePath(dir, 0), '..'), { recursive: true });
    writeFileSync(imagePath(dir, 0), legacy);
    writeFileSync(join(dir, 'images.bin'), Buffer.alloc(10));
    writeFileSync(join(dir, 'journal.jsonl'), '{"row":0,"ok":true,"width":5,"height":5}\n{"row":1,"ok":true,"width":5,"height":5,"offset":4,"size":100}\n');
    const got = new Map<number, Buffer>();
    const { outcomes, stats } = await scrapeImages(rows, {
      stateDir: dir,
      concurrency: 2,
      perHost: 2,
      timeoutMs: 2000,
      retries: 0,
      imageSize: 32,
      minSide: 10,
      maxBytes: 1e7,
      onSettled: (_r, o, data) => void got.set(o.row, data ?? readStoredImage(dir, o)),
    });
    expect(stats).toMatchObject({ ok: 3, resumed: 1 });
    expect(srv.hits.has('/v/0.jpg')).toBe(false);
    expect(srv.hits.get('/v/1.jpg')).toHaveLength(1);
    expect(got.get(0)!.equals(legacy)).toBe(true);
    // New images are appended after what the store held (the 10 bytes a kill may have left).
    expect(outcomes.get(1)!.offset).toBeGreaterThanOrEqual(10);
    for (const row of [1, 2]) expect(readStoredImage(dir, outcomes.get(row)!).equals(got.get(row)!)).toBe(true);
    expect((await sharp(got.get(2)!).metadata()).height).toBe(32);
  });

  test('a slow host at its per-host limit does not hold up rows of other hosts', async () => {
    const slow = await startServer();
    try {
      const order: string[] = [];
      slow.route('/s.jpg', async (req, res, n) => {
        await new Promise((r) => setTimeout(r, 400));
        order.push('slow');
        serveBytes(jpeg, 'image/jpeg')(req, res, n);
      });
      srv.route('/fast.jpg', (req, res, n) => {
        order.push('fast');
        serveBytes(jpeg, 'image/jpeg')(req, res, n);
      });
      const dir = tempDir();
      const tsv = join(dir, 'idx.tsv');
      // Six rows of the slow host first, then six of the fast one.
      writeFileSync(
        tsv,
        [
          ...Array.from({ length: 6 }, (_, i) => `slow ${i}\t${slow.url}/s.jpg?${i}`),
          ...Array.from({ length: 6 }, (_, i) => `fast ${i}\t${srv.url}/fast.jpg?${i}`),
        ].join('\n'),
      );
      const c = makeCtx({ root: dir });
      ctxs.push(c);
      await cc3mKind.run(c, await withDefaults(cc3mKind.params, { tsv, ...FAST, timeout: 5, concurrency: 4, per_host: 2 }));
      expect(JSON.parse(readFileSync(join(c.outDir, 'stats.json'), 'utf8')).ok).toBe(12);
      // All six fast rows finish before the second wave of slow rows does.
      expect(order.slice(0, 6)).toEqual(Array(6).fill('fast'));
      // ... yet the dataset (written while scraping) is in index order.
      const recs = await (await ImageDataset.open(join(c.outDir, 'pairs'))).records('train');
      expect(recs.map((r) => r.captions![0])).toEqual([
        ...Array.from({ length: 6 }, (_, i) => `slow ${i}`),
        ...Array.from({ length: 6 }, (_, i) => `fast ${i}`),
      ]);
    } finally {
      await slow.close();
    }
  });

  test('a missing index says where to get it and where to put it', async () => {
    const c = makeCtx();
    ctxs.push(c);
    await expect(cc3mKind.run(c, await withDefaults(cc3mKind.params, { tsv: 'data/cc3m/Train-GCC-training.tsv' }))).rejects.toThrow(
      /CC3M index not found at .*data\/cc3m\/Train-GCC-training.tsv\. Download Train-GCC-training.tsv from https:\/\/ai.google.com\/research\/ConceptualCaptions\/download/,
    );
  });
});

describe('dataset.cc12m', () => {
  test('downloads the url-caption index (header row skipped) and honours limit', async () => {
    const u = srv.url;
    const index = ['url\tcaption', ...Array.from({ length: 10 }, (_, i) => `${u}/img/${i}.jpg\tcc12m caption ${i}`)].join('\n');
    srv.route('/cc12m.tsv', serveBytes(Buffer.from(index), 'text/tab-separated-values'));
    const c = makeCtx();
    ctxs.push(c);
    await cc12mKind.run(c, await withDefaults(cc12mKind.params, { url: `${u}/cc12m.tsv`, limit: 6, ...FAST }));
    const ds = await ImageDataset.open(join(c.outDir, 'pairs'));
    const recs = await ds.records('train');
    // limit counts data rows; the header is not one.
    expect(recs.map((r) => r.captions![0])).toEqual([0, 1, 2, 3, 4, 5].map((i) => `cc12m caption ${i}`));
    expect(recs[0]!.id).toBe('cc12m-000000000');
    expect(cc12mKind.env!(await withDefaults(cc12mKind.params, {}))).toEqual(['SMKE_MIRROR']);
  });
});
