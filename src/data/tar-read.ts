// Streaming the regular files of a tar or tar.gz (the Flickr30K and CIFAR
// archives, ImageNet's HF shards) without extracting them to disk.

import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ArchiveError, detectArchive } from './extract.js';

export interface TarFile {
  name: string;
  data: Buffer;
}

/** An entry is read into memory whole: the cap keeps a hostile or wrong archive from exhausting it. */
export const MAX_ENTRY_BYTES = 2 ** 30;

/**
 * Regular files of `path` in archive order; a truncated archive raises ArchiveError after the files it did hold.
 * A file larger than `maxEntryBytes` (declared in its header, before any of it is read) is an ArchiveError.
 */
export async function* tarFiles(path: string, filter?: (name: string) => boolean, maxEntryBytes = MAX_ENTRY_BYTES): AsyncGenerator<TarFile> {
  const fmt = await detectArchive(path);
  if (fmt !== 'tar' && fmt !== 'tar.gz') throw new ArchiveError(`${path} is not a tar or tar.gz archive`);
  const tar = await import('tar-stream');
  const ex = tar.extract();
  const src = createReadStream(path);
  const feed = fmt === 'tar.gz' ? pipeline(src, createGunzip(), ex) : pipeline(src, ex);
  let feedError: unknown;
  feed.catch((err) => {
    feedError = err;
  });
  try {
    for await (const entry of ex) {
      const h = entry.header;
      if ((h.type ?? 'file') !== 'file' || (filter && !filter(h.name))) {
        entry.resume();
        continue;
      }
      if ((h.size ?? 0) > maxEntryBytes) {
        throw new ArchiveError(
          `${path}: entry ${JSON.stringify(h.name)} is ${h.size} bytes, over the ${maxEntryBytes} bytes one file of a dataset archive may have; this is not the expected archive (or a decompression bomb): obtain the right one`,
        );
      }
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      yield { name: h.name, data: Buffer.concat(chunks) };
    }
    await feed;
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    const e = feedError ?? err;
    throw new ArchiveError(`${path} is truncated or corrupt (${(e as Error).message}); obtain the archive again`);
  } finally {
    src.destroy();
  }
}
