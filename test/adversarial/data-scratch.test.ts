// Adversarial scratch files (a bad file left in scratch by one bad response
// must not be reused forever by the dataset kinds): each case leaves or serves a
// bad file once, then checks that the next attempt of the same key (same
// scratch dir) fetches it again and succeeds, and that a bad file is never
// taken for a good one.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cifarKind } from '../../src/stages/data/cifar.js';
import { glueKind } from '../../src/stages/data/glue.js';
import { obtain, using } from '../../src/stages/data/obtain.js';
import { ArchiveError } from '../../src/data/extract.js';
import { makeCtx, withDefaults, type TestCtx } from '../data/ctx.js';
import { makeTar, makeZip, serveBytes, startServer, type TestServer } from '../data/server.js';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(() => srv.close());

/** Serve `bad` for the first `n` requests, then `good`. */
function badThenGood(bad: Buffer, good: Buffer, n = 1) {
  return (req: Parameters<ReturnType<typeof serveBytes>>[0], res: Parameters<ReturnType<typeof serveBytes>>[1], k: number) =>
    serveBytes(k <= n ? bad : good)(req, res, k);
}

const html = Buffer.from('<html><body>Please log in to the captive portal</body></html>');
const tsv = (rows: string[][]) => Buffer.from(rows.map((r) => r.join('\t')).join('\n') + '\n');
const cola = makeZip([
  { name: 'CoLA/train.tsv', data: tsv([['gj04', '1', '', 'A fine sentence.']]) },
  { name: 'CoLA/dev.tsv', data: tsv([['gj04', '0', '*', 'Sentence bad a.']]) },
]);

describe('a bad file in scratch is never reused', () => {
  test('dataset.glue: an HTML page answered once instead of the zip fails the attempt; the next attempt downloads again', async () => {
    srv.route('/g1/CoLA.zip', badThenGood(html, cola));
    const c = makeCtx();
    const params = await withDefaults(glueKind.params, { tasks: ['cola'], base_url: `${srv.url}/g1` });
    await expect(glueKind.run(c, params)).rejects.toThrow(/did not give the expected zip file .*discarded and the next attempt downloads it again/);
    expect(readdirSync(c.scratchDir)).toEqual([]);
    // The next attempt of the same key: same scratch dir, fresh output dir.
    const c2 = makeCtx({ root: c.root });
    await glueKind.run(c2, params);
    expect(srv.hits.get('/g1/CoLA.zip')).toHaveLength(2);
    expect(JSON.parse(readFileSync(join(c2.outDir, 'stats.json'), 'utf8')).cola.train.examples).toBe(1);
  });

  test('dataset.glue: a zip whose directory reads but whose entry is damaged is discarded once read', async () => {
    const bad = Buffer.from(cola);
    // The second entry's local header (after the first entry): its signature destroyed, the central directory intact.
    const second = 30 + 'CoLA/train.tsv'.length + tsv([['gj04', '1', '', 'A fine sentence.']]).length;
    expect(bad.readUInt32LE(second)).toBe(0x04034b50);
    bad.writeUInt32LE(0, second);
    srv.route('/g2/CoLA.zip', badThenGood(bad, cola));
    const c = makeCtx();
    const params = await withDefaults(glueKind.params, { tasks: ['cola'], base_url: `${srv.url}/g2` });
    await expect(glueKind.run(c, params)).rejects.toThrow(/entry CoLA\/dev\.tsv cannot be read .*discarded/);
    expect(readdirSync(c.scratchDir)).toEqual([]);
    await glueKind.run(makeCtx({ root: c.root }), params);
    expect(srv.hits.get('/g2/CoLA.zip')).toHaveLength(2);
  });

  test('dataset.cifar: a corrupt tar.gz (bad bytes mid-stream, right length) is discarded once found corrupt', async () => {
    const names = Buffer.from(Array.from({ length: 10 }, (_, i) => `class${i}`).join('\n'));
    const rec = (label: number) => Buffer.concat([Buffer.from([label]), Buffer.alloc(3072, label * 20)]);
    const tar = await makeTar([
      { name: 'cifar-10-batches-bin/batches.meta.txt', data: names },
      ...[1, 2, 3, 4, 5].map((i) => ({ name: `cifar-10-batches-bin/data_batch_${i}.bin`, data: rec(i) })),
      { name: 'cifar-10-batches-bin/test_batch.bin', data: Buffer.concat([rec(0), randomBytes(3073 * 4).map((b, i) => (i % 3073 === 0 ? b % 10 : b))]) },
    ]);
    const good = gzipSync(tar);
    const bad = Buffer.from(good);
    for (let i = 200; i < 260; i++) bad[i] = bad[i]! ^ 0xff; // corrupt deflate data, same size: only reading it shows
    srv.route('/c1/cifar.tar.gz', badThenGood(bad, good));
    const c = makeCtx();
    const params = await withDefaults(cifarKind.params, { url: `${srv.url}/c1/cifar.tar.gz` });
    await expect(cifarKind.run(c, params)).rejects.toThrow(/truncated or corrupt.*downloaded copy was discarded/);
    expect(readdirSync(c.scratchDir)).toEqual([]);
    const c2 = makeCtx({ root: c.root });
    await cifarKind.run(c2, params);
    expect(srv.hits.get('/c1/cifar.tar.gz')).toHaveLength(2);
    expect(c2.metrics.find((m) => m.name === 'images')!.value).toBe(10);
  });

  test('dataset.cifar with md5: a wrong archive never lands in scratch (checked as it arrives)', async () => {
    const good = gzipSync(await makeTar([{ name: 'x/batches.meta.txt', data: Buffer.from('a') }]));
    srv.route('/c2/cifar.tar.gz', serveBytes(gzipSync(Buffer.from('something else entirely'))));
    const c = makeCtx();
    const md5 = createHash('md5').update(good).digest('hex');
    await expect(cifarKind.run(c, await withDefaults(cifarKind.params, { url: `${srv.url}/c2/cifar.tar.gz`, md5 }))).rejects.toThrow(
      new RegExp(`md5 [0-9a-f]{32}, expected ${md5}`),
    );
    expect(readdirSync(c.scratchDir)).toEqual([]);
  });

  describe('obtain: what an earlier attempt left is checked again before reuse', () => {
    const data = randomBytes(50_000);
    const sha = createHash('sha256').update(data).digest('hex');
    let c: TestCtx;
    const get = (extra: Partial<Parameters<typeof obtain>[1]> = {}) => obtain(c, { name: 'f.bin', url: `${srv.url}/o/f.bin`, ...extra });
    const requests = () => srv.hits.get('/o/f.bin')?.length ?? 0;

    beforeAll(() => srv.route('/o/f.bin', serveBytes(data)));

    test.each([
      ['cut short (size differs from the record)', (p: string) => writeFileSync(p, data.subarray(0, 10_000))],
      ['changed in place (same size, other bytes)', (p: string) => writeFileSync(p, Buffer.alloc(data.length, 1))],
      ['grown (bytes appended)', (p: string) => writeFileSync(p, Buffer.concat([data, Buffer.from('x')]))],
      ['left without a record (an interrupted or older attempt)', (p: string) => writeFileSync(`${p}.ok`, 'not json')],
    ])('a file %s is downloaded again', async (_n, spoil) => {
      c = makeCtx();
      const before = requests();
      const p = await get({ sha256: sha });
      expect(requests()).toBe(before + 1);
      // Reused as it is while it matches its record.
      expect(await get({ sha256: sha })).toBe(p);
      expect(requests()).toBe(before + 1);
      spoil(p);
      const again = await get();
      expect(requests()).toBe(before + 2);
      expect(readFileSync(again).equals(data)).toBe(true);
      expect(c.logs.some((l) => /left in scratch by an earlier attempt is not reused/.test(l.msg))).toBe(true);
    });

    test('a file whose record matches but not the expected digest is fetched again (and then fails on its digest)', async () => {
      c = makeCtx();
      await get();
      const other = 'b'.repeat(64);
      await expect(get({ sha256: other })).rejects.toThrow(new RegExp(`sha256 ${sha}, expected ${other}`));
      expect(c.logs.some((l) => new RegExp(`not reused: sha256 ${sha}, expected ${other}`).test(l.msg))).toBe(true);
      expect(existsSync(join(c.scratchDir, 'f.bin'))).toBe(false);
    });

    test("using(): a scratch copy found corrupt is discarded; a user's own file never is", async () => {
      c = makeCtx();
      const p = await get();
      const corrupt = () => Promise.reject(new ArchiveError('x is truncated or corrupt'));
      await expect(using(c, p, corrupt)).rejects.toThrow(/discarded/);
      expect(existsSync(p)).toBe(false);
      expect(existsSync(`${p}.ok`)).toBe(false);
      const mine = join(c.root, 'mine.bin');
      writeFileSync(mine, data);
      const local = await obtain(c, { name: 'mine.bin', local: mine, url: `${srv.url}/o/f.bin` });
      expect(local).toBe(mine);
      await expect(using(c, local, corrupt)).rejects.toThrow(/^x is truncated or corrupt$/);
      expect(existsSync(mine)).toBe(true);
      // Other errors (not about the file) leave the copy alone.
      const q = await get();
      await expect(using(c, q, () => Promise.reject(new Error('disk full')))).rejects.toThrow('disk full');
      expect(existsSync(q)).toBe(true);
    });
  });
});
