// Atomic file writes: write a sibling temporary file, fsync, rename. A killed
// process leaves either the old file, the new file, or a `.tmp-*` file that
// readers never look at — never a half-written shard or index.

import { open, rename, rm } from 'node:fs/promises';
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
