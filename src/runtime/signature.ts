// Stat signatures: what "unchanged" means without reading a file.
//
// ctime is in it because a user can restore mtime (touch -d, utimes) after an
// edit that keeps the size, but not ctime: every write, chmod or utimes sets
// it to now. Inode catches a file replaced by another (rename over it).
import type { BigIntStats } from 'node:fs';

/**
 * A file modified within this window of "now" has a signature that cannot vouch
 * for its content: file systems with coarse timestamps could see a second write
 * inside the same mtime tick (git's "racy clean" problem). Such a file is read,
 * not trusted by its signature, until the window has passed.
 */
const RACY_WINDOW_NS = 2_000_000_000n;

/** The mtime (ns) past which a file is within the racy window of `nowMs`. */
export function racyAfter(nowMs: number = Date.now()): bigint {
  return BigInt(Math.floor(nowMs)) * 1_000_000n - RACY_WINDOW_NS;
}

/** Whether `st` was modified within the racy window before `nowMs`. */
export function isRacy(st: BigIntStats, nowMs: number = Date.now()): boolean {
  return st.mtimeNs > racyAfter(nowMs);
}

/** A file's signature from its recorded parts (the state DB keeps them as columns). */
export function fileSignature(size: number | bigint, mtimeNs: string | bigint, ino: string | bigint, ctimeNs: string | bigint | undefined): string {
  return `f:${size}:${mtimeNs}:${ino}:${ctimeNs ?? ''}`;
}

/** A file's signature as its parts, the form the state DB and the worker's reports keep (`EntryFile`). */
export interface SignatureParts {
  size: number;
  mtimeNs: string;
  ino: string;
  ctimeNs: string;
}

export function signatureParts(st: BigIntStats): SignatureParts {
  return { size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: st.ino.toString(), ctimeNs: st.ctimeNs.toString() };
}

/** A file as "f:size:mtime_ns:inode:ctime_ns", a directory as "d:mtime_ns:ctime_ns". */
export function signature(st: BigIntStats): string {
  return st.isDirectory() ? `d:${st.mtimeNs}:${st.ctimeNs}` : fileSignature(st.size, st.mtimeNs, st.ino, st.ctimeNs);
}

/** A path's signature as numbers, what the no-op stat list is made from (./stat-list.ts). */
export interface StatValues {
  directory: boolean;
  /** 0 for a directory (its size is not part of its signature). */
  size: bigint;
  /** 0 for a directory. */
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** The values of a signature `signature()` made. */
export function statValues(sig: string): StatValues {
  const f = sig.split(':');
  const int = (x: string | undefined): bigint => {
    if (x === undefined || !/^\d+$/.test(x)) throw new Error(`not a stat signature: ${sig}`);
    return BigInt(x);
  };
  if (f[0] === 'd' && f.length === 3) return { directory: true, size: 0n, ino: 0n, mtimeNs: int(f[1]), ctimeNs: int(f[2]) };
  if (f[0] === 'f' && f.length === 5) return { directory: false, size: int(f[1]), ino: int(f[3]), mtimeNs: int(f[2]), ctimeNs: int(f[4]) };
  throw new Error(`not a stat signature: ${sig}`);
}
