// JSON lines: the index format of every dataset (one record per line, so a
// 3M-row index streams instead of being parsed as one 600 MB document).

import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
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

/**
 * Random access to the records of a JSON-lines file without holding them: one
 * pass records where each non-empty line starts (8 bytes a record), then
 * `read` fetches any records by position. For splits read in a shuffled order
 * (a training epoch) whose records should not all sit in memory.
 */
export class JsonlIndex<T> {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    /** Start of record i at starts[i], its end (newline excluded) at ends[i]. */
    private readonly starts: Float64Array,
    private readonly ends: Float64Array,
  ) {}

  static async open<T>(path: string): Promise<JsonlIndex<T>> {
    const starts: number[] = [];
    const ends: number[] = [];
    let pos = 0,
      lineStart = 0,
      blank = true;
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i++, pos++) {
        const c = chunk[i]!;
        if (c === 0x0a) {
          if (!blank) {
            starts.push(lineStart);
            ends.push(pos);
          }
          lineStart = pos + 1;
          blank = true;
        } else if (blank && c !== 0x20 && c !== 0x09 && c !== 0x0d) blank = false;
      }
    }
    if (!blank) {
      starts.push(lineStart);
      ends.push(pos);
    }
    return new JsonlIndex<T>(path, await open(path, 'r'), Float64Array.from(starts), Float64Array.from(ends));
  }

  get length(): number {
    return this.starts.length;
  }

  /** The records at these positions, in the order asked. */
  async read(positions: readonly number[]): Promise<T[]> {
    return Promise.all(
      positions.map(async (i) => {
        if (!(i >= 0 && i < this.length)) throw new RangeError(`${this.path}: record ${i} asked, the file has ${this.length}`);
        const buf = Buffer.alloc(this.ends[i]! - this.starts[i]!);
        await this.handle.read(buf, 0, buf.length, this.starts[i]!);
        try {
          return JSON.parse(buf.toString('utf8')) as T;
        } catch (err) {
          throw new Error(`${this.path}: record ${i + 1} is not valid JSON (${(err as Error).message}); the file is corrupt — regenerate the dataset`);
        }
      }),
    );
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
