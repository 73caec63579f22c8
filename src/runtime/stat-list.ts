// The no-op fast path's stat list (./noop-snapshot.ts): every path whose
// stat a no-op run must find unchanged, with the values it had, in a binary
// file beside the snapshot. Checking it is most of a no-op's work (30,000
// paths for 10,000 stages), so it is done by a small native program when one
// was built (native/stat-check.c: stat(2) on a few threads), otherwise here.
// Both read the same file, compare the same values (the native checker as
// integers, the check here as Node's millisecond doubles; see checkInNode),
// and name the id the list carries; the format is documented once, in
// native/stat-check.c.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { StatValues } from './signature.js';

/** The stat checker binary, in the package's dist/ (this file is in src/runtime or dist/runtime). */
export const STAT_CHECK_PATH = fileURLToPath(new URL('../../dist/native/stat-check', import.meta.url));

const MAGIC = 'SMKESTL2';
const HEADER = 32;
/** Doubles per record: flags, path offset, size, inode, mtime s, mtime ns, ctime s, ctime ns. */
const FIELDS = 8;
const RECORD = FIELDS * 8;
const DIRECTORY = 1;
const IN_STORE = 2;

export interface StatListEntry {
  /** Absolute, or relative to the store directory when `inStore`. */
  path: string;
  inStore: boolean;
  values: StatValues;
}

const seconds = (ns: bigint): number => Number(ns / 1_000_000_000n);
const nanos = (ns: bigint): number => Number(ns % 1_000_000_000n);

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
    const flags = (v.directory ? DIRECTORY : 0) | (e.inStore ? IN_STORE : 0);
    for (const n of [flags, offset, Number(v.size), Number(v.ino), seconds(v.mtimeNs), nanos(v.mtimeNs), seconds(v.ctimeNs), nanos(v.ctimeNs)]) {
      buf.writeDoubleLE(n, at);
      at += 8;
    }
    names[i]!.copy(buf, blob + offset);
    offset += names[i]!.length;
  }
  return buf;
}

/** What a check of a stat list found: the list's id (hex; undefined when it is missing or damaged), and whether every path is unchanged. */
export interface StatListVerdict {
  id: string | undefined;
  unchanged: boolean;
}

/**
 * Checks the list at `file`, started at once: with the native checker, the
 * stats run in another process (on other cores) while the caller reads the
 * rest of the snapshot, and the caller compares the id the verdict names with
 * the one it expects. `native: false` checks in Node even when the native
 * checker was built. A check of the same list against the same store that
 * `startEarlyCheck` began is taken over instead of starting another.
 */
export function checkStatList(file: string, storeDir: string, o: { native?: boolean } = {}): Promise<StatListVerdict> {
  if (o.native === false || !existsSync(STAT_CHECK_PATH)) return Promise.resolve(checkInNode(file, storeDir));
  const started = early;
  early = undefined;
  if (started && started.file === file && started.storeDir === storeDir) {
    earlyTaken = true;
    // Awaited now: the checker must keep this process alive until it answers.
    started.child.ref();
    (started.child.stdout as Socket | null)?.ref();
    return started.verdict;
  }
  return runChecker(file, storeDir).verdict;
}

/** Whether the check `startEarlyCheck` last began was taken over (else a run may leave a better hint). */
export function earlyCheckTaken(): boolean {
  return earlyTaken;
}

let earlyTaken = false;

/** A native check begun before anyone asked for it (`startEarlyCheck`). */
let early: { file: string; storeDir: string; child: ChildProcess; verdict: Promise<StatListVerdict> } | undefined;

/**
 * Starts the native check of `file` now, before the caller knows whether it
 * will want the verdict: `smke run` begins it as its process starts, on the
 * list the last run with the same arguments left (./early-check.ts), so that
 * the checker's stats overlap the loading of smke's modules instead of
 * following it. A check nobody takes over does not keep the process alive.
 */
export function startEarlyCheck(file: string, storeDir: string): void {
  if (early || !existsSync(STAT_CHECK_PATH)) return;
  // One core fewer for the checker: the process that starts it goes on loading smke meanwhile.
  const run = runChecker(file, storeDir, ['--spare-core']);
  earlyTaken = false;
  run.child.unref();
  (run.child.stdout as Socket | null)?.unref();
  early = { file, storeDir, ...run };
}

function runChecker(file: string, storeDir: string, flags: string[] = []): { child: ChildProcess; verdict: Promise<StatListVerdict> } {
  const child = spawn(STAT_CHECK_PATH, [file, storeDir, ...flags], { stdio: ['ignore', 'pipe', 'ignore'] });
  const verdict = new Promise<StatListVerdict>((resolve) => {
    let out = '';
    let settled = false;
    const settle = (v: () => StatListVerdict): void => {
      if (settled) return;
      settled = true;
      resolve(v());
    };
    child.stdout!.setEncoding('latin1').on('data', (d: string) => (out += d));
    // Anything but a verdict (another architecture, killed): check here instead. A spawn that
    // fails reports 'error' and then 'close': the first settles.
    child.on('error', () => settle(() => checkInNode(file, storeDir)));
    child.on('close', (code) => {
      const id = /^([0-9a-f]{16})\n$/.exec(out)?.[1];
      if (code === 2) settle(() => ({ id: undefined, unchanged: false }));
      else if ((code === 0 || code === 1) && id) settle(() => ({ id, unchanged: code === 0 }));
      else settle(() => checkInNode(file, storeDir));
    });
  });
  return { child, verdict };
}

/**
 * The same check with plain `statSync`: its times are milliseconds as doubles,
 * `sec * 1e3 + nsec / 1e6`, and the same formula on the recorded seconds and
 * nanoseconds gives the same double for an unchanged path (a quarter of a
 * microsecond apart at most, finer than the kernel's timestamp clock).
 */
function checkInNode(file: string, storeDir: string): StatListVerdict {
  const invalid = { id: undefined, unchanged: false };
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return invalid;
  }
  if (buf.length < HEADER || buf.toString('latin1', 0, 8) !== MAGIC) return invalid;
  const count = buf.readUInt32LE(16);
  const pathBytes = buf.readUInt32LE(20);
  if (HEADER + count * RECORD + pathBytes !== buf.length) return invalid;
  if (count > 0 && buf[buf.length - 1] !== 0) return invalid;
  const blob = HEADER + count * RECORD;
  // A Float64Array view needs an 8-byte-aligned offset; a small Buffer may sit unaligned in Node's pool.
  const start = buf.byteOffset + HEADER;
  const rec = start % 8 === 0 ? new Float64Array(buf.buffer, start, count * FIELDS) : new Float64Array(Uint8Array.from(buf.subarray(HEADER, blob)).buffer);
  const paths: string[] = [];
  // The whole list is read and valid before any verdict on its paths, as in the native checker.
  for (let i = 0; i < count; i++) {
    const flags = rec[i * FIELDS]!;
    const offset = rec[i * FIELDS + 1]!;
    if (!(flags >= 0 && flags <= 3 && Number.isInteger(flags)) || !(offset >= 0 && offset < pathBytes && Number.isInteger(offset))) return invalid;
    paths.push(buf.toString('utf8', blob + offset, buf.indexOf(0, blob + offset)));
  }
  const id = buf.toString('hex', 8, 16);
  for (let i = 0; i < count; i++) {
    const r = i * FIELDS;
    const flags = rec[r]!;
    const st = statSync(flags & IN_STORE ? `${storeDir}/${paths[i]!}` : paths[i]!, { throwIfNoEntry: false });
    const same =
      st !== undefined &&
      st.mtimeMs === rec[r + 4]! * 1e3 + rec[r + 5]! / 1e6 &&
      st.ctimeMs === rec[r + 6]! * 1e3 + rec[r + 7]! / 1e6 &&
      (flags & DIRECTORY ? st.isDirectory() : st.isFile() && st.size === rec[r + 2] && st.ino === rec[r + 3]);
    if (!same) return { id, unchanged: false };
  }
  return { id, unchanged: true };
}
