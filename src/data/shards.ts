// Webdataset-style tar shards: members `<key>.<ext>` grouped by key. A shard
// is built in memory and written atomically, so the index can record each
// member's byte offset and a reader can pread one image without scanning.
// Plain ustar headers (names are checked to fit one), byte for byte what
// tar-stream's pack writes for the same members.

import { open } from 'node:fs/promises';
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
  if (!/^[\x21-\x7e]+$/.test(name) || name.length > 99 || name.includes('..') || name.startsWith('/')) {
    throw new Error(`shard member name ${JSON.stringify(name)} must be printable ASCII without spaces, '..' or a leading '/', at most 99 characters`);
  }
}

/** `n` octal digits and a space, as tar-stream (and GNU tar) write numeric fields. */
function octal(buf: Buffer, off: number, value: number, digits: number): void {
  const s = value.toString(8);
  if (s.length > digits) throw new Error(`tar field overflow: ${value} does not fit ${digits} octal digits`);
  buf.write('0'.repeat(digits - s.length) + s + ' ', off, 'latin1');
}

/** A ustar header for a regular file; the same bytes tar-stream's pack writes for these fields. */
export function ustarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 'latin1');
  octal(h, 100, 0o644, 6); // mode
  octal(h, 108, 0, 6); // uid
  octal(h, 116, 0, 6); // gid
  octal(h, 124, size, 11);
  octal(h, 136, 0, 11); // mtime: fixed, so the same members give the same bytes
  h[156] = 0x30; // '0': regular file
  h.write('ustar\x0000', 257, 'latin1'); // magic "ustar\0", version "00"
  octal(h, 329, 0, 6); // devmajor
  octal(h, 337, 0, 6); // devminor
  let sum = 8 * 32; // the checksum field counts as spaces
  for (let i = 0; i < 148; i++) sum += h[i]!;
  for (let i = 156; i < BLOCK; i++) sum += h[i]!;
  octal(h, 148, sum, 6);
  return h;
}

const ZEROS = Buffer.alloc(2 * BLOCK);

/**
 * Write members to `path` as one tar (atomically, fsynced) and return where each member's data lies.
 * The tar is assembled as a list of slices (headers, the members' own bytes, padding) and written
 * with one gathered write: no copy of the images and no stream machinery per member.
 */
export async function writeShard(path: string, members: ShardMember[]): Promise<MemberLocation[]> {
  const locations: MemberLocation[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    checkMemberName(m.name);
    const size = m.data.byteLength;
    parts.push(ustarHeader(m.name, size));
    if (size) parts.push(m.data);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) parts.push(ZEROS.subarray(0, pad));
    locations.push({ name: m.name, offset: offset + BLOCK, size });
    offset += BLOCK + size + pad;
  }
  parts.push(ZEROS); // end of archive: two zero blocks
  await writeFileAtomic(path, parts);
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
