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

/** Regular files of `path` in archive order; a truncated archive raises ArchiveError after the files it did hold. */
export async function* tarFiles(path: string, filter?: (name: string) => boolean): AsyncGenerator<TarFile> {
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
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      yield { name: h.name, data: Buffer.concat(chunks) };
    }
    await feed;
  } catch (err) {
    const e = feedError ?? err;
    throw new ArchiveError(`${path} is truncated or corrupt (${(e as Error).message}); obtain the archive again`);
  } finally {
    src.destroy();
  }
}
