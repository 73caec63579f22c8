// Webdataset-style tar shards: members `<key>.<ext>` grouped by key. A shard
// is built in memory and written atomically, so the index can record each
// member's byte offset and a reader can pread one image without scanning.

import { open } from 'node:fs/promises';
import * as tar from 'tar-stream';
import { writeFileAtomic } from './atomic.js';

const BLOCK = 512;

export interface ShardMember {
  name: string;
  data: Uint8Array;
}

export interface MemberLocation {
  name: string;
  /** Offset of the member's data (after its header) within the tar file. */
  offset: number;
  size: number;
}

/** Member names must fit a plain ustar header: then every header is exactly one block and offsets are predictable. */
export function checkMemberName(name: string): void {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x21-\x7e]+$/.test(name) || name.length > 99 || name.includes('..') || name.startsWith('/')) {
    throw new Error(`shard member name ${JSON.stringify(name)} must be printable ASCII without spaces, '..' or a leading '/', at most 99 characters`);
  }
}

/** Write members to `path` as one tar (atomically) and return where each member's data lies. */
export async function writeShard(path: string, members: ShardMember[]): Promise<MemberLocation[]> {
  const pack = tar.pack();
  const locations: MemberLocation[] = [];
  let offset = 0;
  for (const m of members) {
    checkMemberName(m.name);
    // Fixed mtime and owner: the same members give the same bytes, so shard digests are reproducible.
    pack.entry({ name: m.name, size: m.data.byteLength, mtime: new Date(0), mode: 0o644, uid: 0, gid: 0 }, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    locations.push({ name: m.name, offset: offset + BLOCK, size: m.data.byteLength });
    offset += BLOCK + Math.ceil(m.data.byteLength / BLOCK) * BLOCK;
  }
  pack.finalize();
  await writeFileAtomic(path, pack as AsyncIterable<Uint8Array>);
  return locations;
}

/** Read `size` bytes at `offset` of `path`, failing loudly on a short read (a truncated shard). */
export async function readRange(path: string, offset: number, size: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, offset + got);
      if (bytesRead === 0) throw new Error(`${path}: truncated shard (wanted ${size} bytes at offset ${offset}, file ends early); regenerate the dataset`);
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}
