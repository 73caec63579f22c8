// Stat signatures: what "unchanged" means without reading a file.
//
// ctime is in it because a user can restore mtime (touch -d, utimes) after an
// edit that keeps the size, but not ctime: every write, chmod or utimes sets
// it to now. Inode catches a file replaced by another (rename over it).
import type { BigIntStats } from 'node:fs';

/** A file's signature from its recorded parts (the state DB keeps them as columns). */
export function fileSignature(size: number | bigint, mtimeNs: string | bigint, ino: string | bigint, ctimeNs: string | bigint | undefined): string {
  return `f:${size}:${mtimeNs}:${ino}:${ctimeNs ?? ''}`;
}

/** A file as "f:size:mtime_ns:inode:ctime_ns", a directory as "d:mtime_ns:ctime_ns". */
export function signature(st: BigIntStats): string {
  return st.isDirectory() ? `d:${st.mtimeNs}:${st.ctimeNs}` : fileSignature(st.size, st.mtimeNs, st.ino, st.ctimeNs);
}
