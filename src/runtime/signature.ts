// Stat signatures: what "unchanged" means without reading a file.
import type { BigIntStats } from 'node:fs';

/** A file as "f:size:mtime_ns:inode", a directory as "d:mtime_ns". */
export function signature(st: BigIntStats): string {
  return st.isDirectory() ? `d:${st.mtimeNs}` : `f:${st.size}:${st.mtimeNs}:${st.ino}`;
}
