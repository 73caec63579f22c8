// The no-op fast path's stat list (./noop-snapshot.ts): every path whose
// stat a no-op run must find unchanged, with the values it had, in a binary
// file beside the snapshot. Checking it is most of a no-op's work (30,000
// paths for 10,000 stages), so it is done by a small native program when one
// was built (native/stat-check.c: stat(2) on a few threads), otherwise here.
// Both read the same file and compare the same values, exactly, in
// nanoseconds; the format is documented once, in native/stat-check.c.

import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statMatches, type StatValues } from './signature.js';

/** The stat checker binary, in the package's dist/ (this file is in src/runtime or dist/runtime). */
export const STAT_CHECK_PATH = fileURLToPath(new URL('../../dist/native/stat-check', import.meta.url));

const MAGIC = 'SMKESTL1';
const HEADER = 32;
const RECORD = 48;
const DIRECTORY = 1n;
const IN_STORE = 2n;

export interface StatListEntry {
  /** Absolute, or relative to the store directory when `inStore`. */
  path: string;
  inStore: boolean;
  values: StatValues;
}

/** The list's bytes; `id` (8 bytes) ties it to the snapshot that names it. */
export function encodeStatList(id: Buffer, entries: readonly StatListEntry[]): Buffer {
  const names = entries.map((e) => Buffer.from(`${e.path}\0`));
  const pathBytes = names.reduce((n, b) => n + b.length, 0);
  const buf = Buffer.alloc(HEADER + entries.length * RECORD + pathBytes);
  buf.write(MAGIC, 0, 'latin1');
  id.copy(buf, 8, 0, 8);
  buf.writeUInt32LE(entries.length, 16);
  buf.writeUInt32LE(pathBytes, 20);
  let offset = 0;
  let at = HEADER;
  const blob = HEADER + entries.length * RECORD;
  for (const [i, e] of entries.entries()) {
    const v = e.values;
    for (const n of [(v.directory ? DIRECTORY : 0n) | (e.inStore ? IN_STORE : 0n), BigInt(offset), v.size, v.ino, v.mtimeNs, v.ctimeNs]) {
      buf.writeBigInt64LE(n, at);
      at += 8;
    }
    names[i]!.copy(buf, blob + offset);
    offset += names[i]!.length;
  }
  return buf;
}

/**
 * Whether every path of the list at `file` still has its recorded values.
 * False as well when the list is missing, damaged, or not the one with `id`.
 * `native: false` checks in Node even when the native checker was built.
 */
export function statListUnchanged(file: string, storeDir: string, id: Buffer, o: { native?: boolean } = {}): boolean {
  if (o.native !== false) {
    const r = spawnSync(STAT_CHECK_PATH, [file, storeDir, id.toString('hex')], { stdio: 'ignore' });
    // Anything but a verdict (not built, another architecture, killed): check here instead.
    if (r.status === 0) return true;
    if (r.status === 1) return false;
  }
  return checkInNode(file, storeDir, id);
}

function checkInNode(file: string, storeDir: string, id: Buffer): boolean {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return false;
  }
  if (buf.length < HEADER || buf.toString('latin1', 0, 8) !== MAGIC || !buf.subarray(8, 16).equals(id)) return false;
  const count = buf.readUInt32LE(16);
  const pathBytes = buf.readUInt32LE(20);
  if (HEADER + count * RECORD + pathBytes !== buf.length) return false;
  const blob = HEADER + count * RECORD;
  if (count > 0 && buf[buf.length - 1] !== 0) return false;
  for (let i = 0; i < count; i++) {
    const at = HEADER + i * RECORD;
    const flags = buf.readBigInt64LE(at);
    const offset = Number(buf.readBigInt64LE(at + 8));
    if ((flags & ~(DIRECTORY | IN_STORE)) !== 0n || offset < 0 || offset >= pathBytes) return false;
    const path = buf.toString('utf8', blob + offset, buf.indexOf(0, blob + offset));
    const values: StatValues = {
      directory: (flags & DIRECTORY) !== 0n,
      size: buf.readBigInt64LE(at + 16),
      ino: buf.readBigInt64LE(at + 24),
      mtimeNs: buf.readBigInt64LE(at + 32),
      ctimeNs: buf.readBigInt64LE(at + 40),
    };
    const st = statSync((flags & IN_STORE) !== 0n ? join(storeDir, path) : path, { bigint: true, throwIfNoEntry: false });
    if (!st || !statMatches(st, values)) return false;
  }
  return true;
}
