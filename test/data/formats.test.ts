import { createReadStream, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar-stream';
import { afterEach, describe, expect, test } from 'vitest';
import { writeFileAtomic } from '../../src/data/atomic.js';
import { DatasetFormatError, readDescriptor } from '../../src/data/dataset-format.js';
import { ImageDataset, ImageDatasetWriter } from '../../src/data/image-dataset.js';
import { writeShard } from '../../src/data/shards.js';
import { TextTasks, TextTasksWriter, glueSpec, readCorpus, writeCorpus } from '../../src/data/text-tasks.js';
import { tempDir } from './ctx.js';
import { rmSync } from 'node:fs';

const dirs: string[] = [];
const tmp = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function tarMembers(path: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tar.extract();
  createReadStream(path).pipe(ex);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.set(entry.header.name, Buffer.concat(chunks));
  }
  return out;
}

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('image datasets', () => {
  test('shards round-trip: the index offsets point at the exact member bytes and the tar is a valid webdataset shard', async () => {
    const dir = tmp();
    const w = new ImageDatasetWriter(dir, { type: 'image-text', name: 't', source: 'test', shardSize: 2 });
    const sizes = [1, 511, 512, 513, 3000];
    for (const [i, n] of sizes.entries()) {
      await w.add({ id: `img${i}`, split: i < 4 ? 'train' : 'test', data: bytes(n, i + 1), ext: 'jpg', captions: [`caption ${i}`, 'another'] });
    }
    const d = await w.finish();
    expect(d.splits).toEqual({ train: 4, test: 1 });
    expect(d.image.format).toBe('jpeg');
    expect(readdirSync(join(dir, 'shards')).sort()).toEqual(['test-000000.tar', 'train-000000.tar', 'train-000001.tar']);

    const ds = await ImageDataset.open(dir);
    const train = await ds.records('train');
    expect(train.map((r) => r.id)).toEqual(['img0', 'img1', 'img2', 'img3']);
    for (const [i, r] of (await ds.records()).entries()) {
      const data = await ds.readImage(r);
      expect(data.length).toBe(sizes[i]);
      expect(data.every((b) => b === i + 1)).toBe(true);
    }
    const members = await tarMembers(join(dir, 'shards/train-000001.tar'));
    expect([...members.keys()]).toEqual(['img2.jpg', 'img2.json', 'img3.jpg', 'img3.json']);
    expect(JSON.parse(members.get('img3.json')!.toString())).toEqual({ captions: ['caption 3', 'another'] });
    await expect(ds.records('val')).rejects.toThrow(/no split 'val' \(it has: train, test\)/);
  });

  test('files storage and classification labels with class names', async () => {
    const dir = tmp();
    const w = new ImageDatasetWriter(dir, { type: 'image-class', name: 'c', source: 'test', storage: 'files', classes: ['cat', 'dog'] });
    await w.add({ id: 'a', split: 'train', data: bytes(10, 7), ext: 'png', label: 1, width: 4, height: 4 });
    await w.add({ id: 'b', split: 'train', data: bytes(20, 8), ext: 'png', label: 0, width: 4, height: 4 });
    await expect(w.add({ id: 'c', split: 'train', data: bytes(1, 1), ext: 'png', label: 2 })).rejects.toThrow(/label 2 is not a class index in \[0, 2\)/);
    await expect(w.add({ id: 'a', split: 'train', data: bytes(1, 1), ext: 'png', label: 0 })).rejects.toThrow(/duplicate image id a/);
    await expect(w.add({ id: '../x', split: 'train', data: bytes(1, 1), ext: 'png', label: 0 })).rejects.toThrow(/must match/);
    const d = await w.finish();
    expect(d.image).toEqual({ format: 'png', width: 4, height: 4 });
    const ds = await ImageDataset.open(dir, 'image-class');
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(JSON.parse(await readFile(join(dir, 'classes.json'), 'utf8'))).toEqual(['cat', 'dog']);
    const [a] = await ds.records('train');
    expect(a!.path).toBe('images/train/a.png');
    expect((await ds.readImage(a!)).length).toBe(10);
    await expect(ImageDataset.open(dir, 'image-text')).rejects.toThrow(/holds a image-class dataset, but a image-text dataset is needed/);
  });

  test('an index path that escapes the dataset directory is refused', async () => {
    const dir = tmp();
    const w = new ImageDatasetWriter(dir, { type: 'image-text', name: 't', source: 'test', storage: 'files' });
    await w.add({ id: 'a', split: 'train', data: bytes(3, 1), ext: 'jpg', captions: ['x'] });
    await w.finish();
    writeFileSync(join(dir, 'index.jsonl'), JSON.stringify({ id: 'a', split: 'train', path: '../../etc/passwd', captions: ['x'] }) + '\n');
    const ds = await ImageDataset.open(dir);
    const [r] = await ds.records();
    await expect(ds.readImage(r!)).rejects.toThrow(/points outside the dataset/);
  });

  test('writeShard writes byte for byte the tar that tar-stream packs for the same members', async () => {
    const dir = tmp();
    const members = [0, 1, 511, 512, 513, 3000, 70_000].flatMap((n, i) => [
      { name: `cc3m-${String(i).padStart(9, '0')}.jpg`, data: bytes(n, i + 1) },
      { name: `cc3m-${String(i).padStart(9, '0')}.json`, data: Buffer.from(JSON.stringify({ captions: [`caption ${i}`] })) },
    ]);
    // More slices than one writev takes (1024): the write continues where the first one stopped.
    for (let i = 0; i < 600; i++) members.push({ name: `small-${i}.txt`, data: bytes(1 + (i % 700), i % 251) });
    const locs = await writeShard(join(dir, 's.tar'), members);
    const pack = tar.pack();
    for (const m of members) pack.entry({ name: m.name, size: m.data.byteLength, mtime: new Date(0), mode: 0o644, uid: 0, gid: 0 }, m.data);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const ours = await readFile(join(dir, 's.tar'));
    expect(ours.equals(Buffer.concat(chunks))).toBe(true);
    for (const [i, l] of locs.entries()) expect(ours.subarray(l.offset, l.offset + l.size).equals(members[i]!.data)).toBe(true);
    expect([...(await tarMembers(join(dir, 's.tar'))).keys()]).toEqual(members.map((m) => m.name));
  });

  test('a truncated shard is reported, not read as a short image', async () => {
    const dir = tmp();
    const locs = await writeShard(join(dir, 's.tar'), [{ name: 'a.jpg', data: bytes(2000, 1) }]);
    const full = await readFile(join(dir, 's.tar'));
    writeFileSync(join(dir, 's.tar'), full.subarray(0, 1000));
    const { readRange } = await import('../../src/data/shards.js');
    await expect(readRange(join(dir, 's.tar'), locs[0]!.offset, locs[0]!.size)).rejects.toThrow(/truncated shard/);
  });

  test('the dataset reader reports a truncated shard too', async () => {
    const dir = tmp();
    const w = new ImageDatasetWriter(dir, { type: 'image-text', name: 't', source: 'test' });
    await w.add({ id: 'a', split: 'train', data: bytes(5000, 3), ext: 'jpg', captions: ['x'] });
    await w.finish();
    const shard = join(dir, 'shards/train-000000.tar');
    writeFileSync(shard, (await readFile(shard)).subarray(0, 2000));
    const ds = await ImageDataset.open(dir);
    await expect(ds.readImage((await ds.records())[0]!)).rejects.toThrow(/truncated shard .* regenerate the dataset/);
  });
});

describe('descriptor checks', () => {
  test('missing, foreign, newer and mistyped descriptors give clear errors', async () => {
    const dir = tmp();
    await expect(readDescriptor(dir)).rejects.toThrow(/is not a smke dataset: dataset.json is missing/);
    writeFileSync(join(dir, 'dataset.json'), '{"format":"other"}');
    await expect(readDescriptor(dir)).rejects.toThrow(DatasetFormatError);
    writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ format: 'smke-dataset', version: 99, type: 'text-corpus' }));
    await expect(readDescriptor(dir)).rejects.toThrow(/version 99 is newer than this smke reads/);
    writeFileSync(join(dir, 'dataset.json'), '{not json');
    await expect(readDescriptor(dir)).rejects.toThrow(/not valid JSON/);
  });
});

describe('atomic writes', () => {
  test('a writer that fails midway leaves neither the target nor a temporary file', async () => {
    const dir = tmp();
    async function* chunks() {
      yield Buffer.from('first part');
      throw new Error('killed');
    }
    await expect(writeFileAtomic(join(dir, 'shard.tar'), chunks())).rejects.toThrow('killed');
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(join(dir, 'shard.tar'))).toBe(false);
  });
});

describe('text tasks and corpus', () => {
  test('GLUE-format tasks round-trip with their specs; bad labels are refused', async () => {
    const dir = tmp();
    const w = new TextTasksWriter(dir, 'g', 'test');
    await w.addTask('stsb', glueSpec('stsb', {}), {
      train: [{ idx: 0, text: 'a', text_pair: 'b', label: 4.2 }],
      validation: [{ idx: 0, text: 'c', text_pair: 'd', label: 0 }],
    });
    await expect(w.addTask('cola', glueSpec('cola', {}), { train: [{ idx: 0, text: 'x', label: 2 }], validation: [] })).rejects.toThrow(
      /label 2 is not in \[0, 2\)/,
    );
    await expect(w.addTask('mrpc', glueSpec('mrpc', {}), { train: [{ idx: 0, text: 'x', label: 1 }], validation: [] })).rejects.toThrow(/empty text_pair/);
    await expect(w.addTask('sst2', glueSpec('sst2', {}), { train: [{ idx: 0, text: 'x', label: 1 }] })).rejects.toThrow(
      /eval split 'validation' was not written/,
    );
    await w.finish();
    const t = await TextTasks.open(dir);
    expect(t.names).toEqual(['stsb']);
    expect(t.spec('stsb')).toMatchObject({ problem: 'regression', metric: 'spearman', range: [0, 5], splits: { train: 1, validation: 1 } });
    expect(await t.examples('stsb', 'train')).toEqual([{ idx: 0, text: 'a', text_pair: 'b', label: 4.2 }]);
    expect(() => t.spec('cola')).toThrow(/no task 'cola' \(it has: stsb\)/);
  });

  test('corpus lines never contain newlines', async () => {
    const dir = tmp();
    const d = await writeCorpus(dir, 'c', 'test', ['one line', 'two\nlines', 'three']);
    expect(d.lines).toBe(3);
    expect(await readCorpus(dir)).toEqual(['one line', 'two lines', 'three']);
  });
});
