import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonlIndex, readJsonlAll } from '../../src/data/jsonl.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smke-jsonl-index-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('JsonlIndex: records by position without holding them', () => {
  it.each([
    ['plain lines', '{"a":1}\n{"a":2}\n{"a":3}\n'],
    ['no final newline, blank and CRLF lines, multi-byte text', '{"a":"é"}\r\n\n   \n{"a":"日本"}\n{"a":"x"}'],
    ['one record', '{"a":[1,2]}'],
    ['empty file', ''],
  ])('%s: reads what readJsonlAll reads, in any order', async (name, text) => {
    const path = join(dir, `${name.replace(/\W/g, '_')}.jsonl`);
    await writeFile(path, text);
    const all = await readJsonlAll<unknown>(path);
    const index = await JsonlIndex.open<unknown>(path);
    expect(index.length).toBe(all.length);
    const order = all.map((_, i) => all.length - 1 - i);
    expect(await index.read(order)).toEqual(order.map((i) => all[i]));
    expect(await index.read(order.length ? [0, 0] : [])).toEqual(order.length ? [all[0], all[0]] : []);
    await expect(index.read([all.length])).rejects.toThrow(/record \d+ asked, the file has \d+/);
    await index.close();
  });

  it('a corrupt record is named with its position', async () => {
    const path = join(dir, 'bad.jsonl');
    await writeFile(path, '{"a":1}\n{"a":\n');
    const index = await JsonlIndex.open(path);
    await expect(index.read([1])).rejects.toThrow(/bad\.jsonl: record 2 is not valid JSON/);
    await index.close();
  });
});
