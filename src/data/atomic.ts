// Atomic file writes: write a sibling temporary file, fsync, rename. A killed
// process leaves either the old file, the new file, or a `.tmp-*` file that
// readers never look at — never a half-written shard or index.

import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** A temporary name next to `path` (same directory, so rename is atomic). */
export function tmpPathFor(path: string): string {
  return join(dirname(path), `.tmp-${process.pid}-${++counter}-${basename(path)}`);
}

/** True for the temporary files tmpPathFor makes, so cleanup can recognise them. */
export function isTmpName(name: string): boolean {
  return name.startsWith('.tmp-');
}

/**
 * Write `data` (one buffer, or chunks) to `path` atomically. `fsync: false`
 * keeps the rename atomicity against a killed process but not against power
 * loss: for scratch files that a rerun can fetch again.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  opts: { fsync?: boolean } = {},
): Promise<void> {
  const tmp = tmpPathFor(path);
  const fh = await open(tmp, 'w');
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) {
      await fh.writeFile(data);
    } else if (Array.isArray(data)) {
      // A list of slices (a tar shard): one gathered write instead of one thread-pool round trip per slice.
      await writevAll(fh, data as Uint8Array[]);
    } else {
      for await (const chunk of data as AsyncIterable<Uint8Array>) await fh.write(chunk);
    }
    if (opts.fsync !== false) await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
}

/** writev, resumed after a short write (large or many slices), so every byte lands. */
async function writevAll(fh: FileHandle, parts: Uint8Array[]): Promise<void> {
  let i = 0;
  let skip = 0; // bytes of parts[i] already written
  while (i < parts.length) {
    const batch = parts.slice(i, i + 1024).map((p, k) => (k === 0 && skip ? p.subarray(skip) : p));
    let { bytesWritten } = await fh.writev(batch);
    if (bytesWritten === 0 && batch.some((b) => b.byteLength > 0)) throw new Error('writev wrote nothing');
    while (i < parts.length && bytesWritten > 0) {
      const left = parts[i]!.byteLength - skip;
      if (bytesWritten >= left) {
        bytesWritten -= left;
        i++;
        skip = 0;
      } else {
        skip += bytesWritten;
        bytesWritten = 0;
      }
    }
    while (i < parts.length && parts[i]!.byteLength === 0) i++;
  }
}
