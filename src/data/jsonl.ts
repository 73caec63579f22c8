// JSON lines: the index format of every dataset (one record per line, so a
// 3M-row index streams instead of being parsed as one 600 MB document).

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from './atomic.js';

export async function* readJsonl<T>(path: string): AsyncGenerator<T> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    try {
      yield JSON.parse(line) as T;
    } catch (err) {
      throw new Error(`${path}:${n}: not valid JSON (${(err as Error).message}); the file is corrupt — regenerate the dataset`);
    }
  }
}

export async function readJsonlAll<T>(path: string): Promise<T[]> {
  const out: T[] = [];
  for await (const rec of readJsonl<T>(path)) out.push(rec);
  return out;
}

export async function writeJsonlAtomic(path: string, records: Iterable<unknown>): Promise<void> {
  function* lines(): Generator<Uint8Array> {
    let buf: string[] = [];
    for (const r of records) {
      buf.push(JSON.stringify(r));
      if (buf.length >= 4096) {
        yield Buffer.from(buf.join('\n') + '\n');
        buf = [];
      }
    }
    if (buf.length) yield Buffer.from(buf.join('\n') + '\n');
  }
  await writeFileAtomic(path, lines());
}
