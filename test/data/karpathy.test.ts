import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ImageDataset } from '../../src/data/image-dataset.js';
import { cocoKind, flickr30kKind } from '../../src/stages/data/karpathy.js';
import { makeCtx, withDefaults, type TestCtx } from './ctx.js';
import { makeTar, makeZip, serveBytes, startServer, type TestServer } from './server.js';

let srv: TestServer;
const ctxs: TestCtx[] = [];
const jpg = (r: number, w = 40, h = 30) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r, g: 10, b: 10 } } })
    .jpeg()
    .toBuffer();
const sentences = (tag: string) => [1, 2, 3, 4, 5].map((i) => ({ raw: `${tag} caption ${i} `, tokens: [] }));

beforeAll(async () => {
  srv = await startServer();
  const coco = {
    dataset: 'coco',
    images: [
      { filepath: 'train2014', filename: 'COCO_train2014_000000000009.jpg', split: 'train', cocoid: 9, imgid: 0, sentences: sentences('train') },
      { filepath: 'val2014', filename: 'COCO_val2014_000000000042.jpg', split: 'restval', cocoid: 42, imgid: 1, sentences: sentences('restval') },
      { filepath: 'val2014', filename: 'COCO_val2014_000000000073.jpg', split: 'test', cocoid: 73, imgid: 2, sentences: sentences('test') },
      { filepath: 'val2014', filename: 'COCO_val2014_000000000074.jpg', split: 'val', cocoid: 74, imgid: 3, sentences: sentences('val') },
      { filepath: 'val2014', filename: 'COCO_val2014_000000000099.jpg', split: 'test', cocoid: 99, imgid: 4, sentences: sentences('missing') },
      { filepath: 'val2014', filename: 'COCO_val2014_000000000100.jpg', split: 'test', cocoid: 100, imgid: 5, sentences: sentences('corrupt') },
      { filepath: 'val2014', filename: 'broken-entry.jpg', split: 'test', sentences: [] },
    ],
  };
  const flickr = {
    dataset: 'flickr30k',
    images: [
      { filename: '1000092795.jpg', split: 'train', imgid: 0, sentences: sentences('f-train') },
      { filename: '10002456.jpg', split: 'test', imgid: 1, sentences: sentences('f-test') },
      { filename: '1001465944.jpg', split: 'val', imgid: 2, sentences: sentences('f-val') },
      { filename: '404.jpg', split: 'test', imgid: 3, sentences: sentences('f-missing') },
    ],
  };
  srv.route(
    '/caption_datasets.zip',
    serveBytes(
      makeZip([
        { name: 'dataset_coco.json', data: Buffer.from(JSON.stringify(coco)) },
        { name: 'dataset_flickr30k.json', data: Buffer.from(JSON.stringify(flickr)) },
      ]),
    ),
  );
  srv.route('/zips/train2014.zip', serveBytes(makeZip([{ name: 'train2014/' }, { name: 'train2014/COCO_train2014_000000000009.jpg', data: await jpg(200) }])));
  const broken = (await jpg(50, 300, 200)).subarray(0, 400);
  srv.route(
    '/zips/val2014.zip',
    serveBytes(
      makeZip([
        { name: 'val2014/COCO_val2014_000000000042.jpg', data: await jpg(100) },
        { name: 'val2014/COCO_val2014_000000000073.jpg', data: await jpg(120, 64, 48) },
        { name: 'val2014/COCO_val2014_000000000074.jpg', data: await jpg(140) },
        { name: 'val2014/COCO_val2014_000000000100.jpg', data: broken },
      ]),
    ),
  );
});
afterAll(async () => {
  ctxs.forEach((c) => c.cleanup());
  await srv.close();
});

describe('dataset.coco', () => {
  test('converts the zips with the Karpathy split (restval into train), counting missing and corrupt images', async () => {
    const c = makeCtx();
    ctxs.push(c);
    const p = await withDefaults(cocoKind.params, {
      train_url: `${srv.url}/zips/train2014.zip`,
      val_url: `${srv.url}/zips/val2014.zip`,
      karpathy_url: `${srv.url}/caption_datasets.zip`,
    });
    await cocoKind.run(c, p);
    const ds = await ImageDataset.open(join(c.outDir, 'pairs'), 'image-text');
    expect(ds.descriptor.splits).toEqual({ train: 2, test: 1, val: 1 });
    const [t] = await ds.records('test');
    expect(t).toMatchObject({ id: 'coco-73', width: 64, height: 48, captions: sentences('test').map((s) => s.raw.trim()) });
    // image_size 0: the original JPEG bytes, unchanged.
    expect((await ds.readImage(t!)).equals(await jpg(120, 64, 48))).toBe(true);
    const stats = JSON.parse(readFileSync(join(c.outDir, 'stats.json'), 'utf8'));
    expect(stats).toMatchObject({ expected: 6, ok: 4, dropped: { missing_image: 1, decode_error: 1 } });
    expect(c.logs.some((l) => /1 malformed image entries skipped/.test(l.msg))).toBe(true);
  });

  test('splits and image_size select and resize', async () => {
    const c = makeCtx();
    ctxs.push(c);
    const p = await withDefaults(cocoKind.params, {
      val_url: `${srv.url}/zips/val2014.zip`,
      train_url: `${srv.url}/nope.zip`,
      karpathy_url: `${srv.url}/caption_datasets.zip`,
      splits: ['test'],
      image_size: 16,
    });
    await cocoKind.run(c, p);
    const ds = await ImageDataset.open(join(c.outDir, 'pairs'));
    const [t] = await ds.records('test');
    expect([t!.width, t!.height]).toEqual([21, 16]);
    expect(srv.hits.has('/nope.zip')).toBe(false); // no train image wanted: the train zip is never fetched
  });
});

describe('dataset.flickr30k', () => {
  test('a missing archive says where to request it and where to put it', async () => {
    const c = makeCtx();
    ctxs.push(c);
    const p = await withDefaults(flickr30kKind.params, { karpathy_url: `${srv.url}/caption_datasets.zip` });
    expect(flickr30kKind.inputs!(p)).toEqual(['data/flickr30k/flickr30k-images.tar.gz']);
    await expect(flickr30kKind.run(c, p)).rejects.toThrow(
      new RegExp(
        `Flickr30K archive not found at ${c.projectDir}/data/flickr30k/flickr30k-images.tar.gz\\. .*https://shannon.cs.illinois.edu/DenotationGraph/.*place it at`,
      ),
    );
  });

  test('converts the user-placed archive with the Karpathy split', async () => {
    const c = makeCtx();
    ctxs.push(c);
    mkdirSync(join(c.projectDir, 'data/flickr30k'), { recursive: true });
    const tar = await makeTar([
      { name: 'flickr30k-images/', type: 'directory' },
      { name: 'flickr30k-images/1000092795.jpg', data: await jpg(10) },
      { name: 'flickr30k-images/10002456.jpg', data: await jpg(20) },
      { name: 'flickr30k-images/1001465944.jpg', data: await jpg(30) },
      { name: 'flickr30k-images/readme.txt', data: Buffer.from('not in the split') },
    ]);
    writeFileSync(join(c.projectDir, 'data/flickr30k/flickr30k-images.tar.gz'), gzipSync(tar));
    await flickr30kKind.run(c, await withDefaults(flickr30kKind.params, { karpathy_url: `${srv.url}/caption_datasets.zip` }));
    const ds = await ImageDataset.open(join(c.outDir, 'pairs'));
    expect(ds.descriptor.splits).toEqual({ train: 1, test: 1, val: 1 });
    expect((await ds.records('test'))[0]).toMatchObject({ id: 'flickr-1', captions: sentences('f-test').map((s) => s.raw.trim()) });
    expect(JSON.parse(readFileSync(join(c.outDir, 'stats.json'), 'utf8'))).toMatchObject({ ok: 3, dropped: { missing_image: 1 } });
  });
});
