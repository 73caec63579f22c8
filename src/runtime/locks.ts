// Instance locks: `<locksDir>/<key>` names the process running an instance
// (pid, its start time, host) and a token, so that a second `smke run` needing
// the same instance waits for it and reuses the result instead of running it
// twice.
//
// A lock whose process is gone (same host) is stale and is taken over with a
// warning: there is no "run --unlock", the complaint of Snakemake, DVC and
// Nextflow users after every crash. The orchestrator creates the lock and the
// worker adopts it (rewrites it with its own pid), so an orchestrator killed
// while its worker still runs does not make the lock look stale.
//
// A lock is a symbolic link whose target is its content,
// `<pid>:<pid start>:<token>:<host>`. Creating one is atomic and fails when it
// exists (one symlink(2) where a file needed a write, a link and an unlink),
// replacing one is a rename, and a target this short lives in the inode on
// ext4 and most other file systems: no data block is allocated or freed. A
// lock file that had been renamed over had its block allocated by ext4 at the
// rename (auto_da_alloc), and freeing it when the lock was released took ~3 ms
// on a file system mounted with online discard: the largest single cost of a
// trivial stage (docs/runtime.md, "Per-stage overhead").

import { linkSync, lstatSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { procStatFields } from './proc.js';

export interface LockInfo {
  pid: number;
  /** Start time of the pid (Linux clock ticks since boot), so a reused pid is not mistaken for the holder. */
  pidStart?: string;
  host: string;
  token: string;
}

/** This machine's name, as locks, in-flight directory names and manifests give it (read once: uname(2) on every lock added up). */
export function thisHost(): string {
  return (host ??= hostname());
}
let host: string | undefined;

export function processStart(pid: number): string | undefined {
  if (pid === process.pid) return (ownStart ??= procStatFields(pid)?.[19]);
  return procStatFields(pid)?.[19]; // field 22, starttime
}
/** This process's start time never changes: read once (every lock this process takes names it). */
let ownStart: string | undefined;

export function pidAlive(pid: number, pidStart?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const fields = procStatFields(pid);
  if (fields === undefined) return true; // no /proc: trust kill(0)
  // A killed process whose parent has not reaped it yet is a zombie: gone for our purposes.
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return pidStart === undefined || fields[19] === pidStart;
}

/** A lock's content as the target of its symbolic link (no ':' in a pid, a start time, a hex token or a host name). */
export function formatLock(info: LockInfo): string {
  return `${info.pid}:${info.pidStart ?? ''}:${info.token}:${info.host}`;
}

function parseLock(text: string): LockInfo | undefined {
  const [pid, pidStart, token, host, ...rest] = text.split(':');
  if (rest.length || !host || !token || !/^\d+$/.test(pid ?? '')) return undefined;
  return { pid: Number(pid), ...(pidStart && { pidStart }), token, host };
}

/** The lock's content, or undefined when it is absent or not a lock smke wrote (empty, garbage, a directory). */
export function readLock(path: string): LockInfo | undefined {
  try {
    return parseLock(readlinkSync(path));
  } catch (e) {
    // Not a symbolic link: a lock file of an older smke (JSON), or something else.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') return undefined;
  }
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  const o = v as Partial<LockInfo> | null;
  // Parsable is not enough: `{}` or `null` would make a waiter wait for "pid undefined" forever.
  if (!o || typeof o !== 'object' || !Number.isInteger(o.pid) || typeof o.host !== 'string' || typeof o.token !== 'string') return undefined;
  return { pid: o.pid!, ...(typeof o.pidStart === 'string' && { pidStart: o.pidStart }), host: o.host, token: o.token };
}

/**
 * How long a lock file that smke cannot read may exist before it counts as
 * stale. smke never leaves one half-written (it is linked or renamed into
 * place whole), so an unreadable lock was damaged or written by something
 * else; the grace only covers clocks and file systems we do not know.
 */
export const UNREADABLE_LOCK_GRACE_MS = 5000;

/**
 * Why the lock at `path` (whose holder read as `holder`) may be taken over, or
 * undefined while it must be waited for.
 */
export function staleLock(path: string, holder: LockInfo | undefined, now = Date.now()): string | undefined {
  if (holder) return isStale(holder) ? `pid ${holder.pid} on ${holder.host} is gone` : undefined;
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return undefined; // released meanwhile: just try again
  }
  const age = now - st.mtimeMs;
  if (age < UNREADABLE_LOCK_GRACE_MS) return undefined;
  const what = st.isDirectory() ? 'a directory' : st.size === 0 ? 'empty' : `not a lock smke wrote (${st.size} bytes)`;
  return `its lock file ${path} was ${what} for ${Math.round(age / 1000)} s`;
}

export function isStale(info: LockInfo): boolean {
  // Another host's process cannot be checked from here: never presume it dead.
  return info.host === thisHost() && !pidAlive(info.pid, info.pidStart);
}

/**
 * Locks are not fsynced: a lock is advisory and only means something while
 * its holder runs. A killed process loses nothing of what it wrote, so
 * SIGKILL leaves a whole lock; only a crash of the machine can lose one, and
 * after that no holder is alive: a lost lock is the same as a released one,
 * one that survived names a dead pid (or one with another start time) and is
 * stale. What the lock guards, the store entry, is published durably by
 * itself (./store.ts).
 */
export function newLockInfo(pid = process.pid): LockInfo {
  return { pid, pidStart: processStart(pid), host: thisHost(), token: randomBytes(8).toString('hex') };
}

export type AcquireResult = { ok: true; info: LockInfo } | { ok: false; holder: LockInfo | undefined };

/** Create the lock atomically: symlink(2) fails if it exists, and readers never see it half-written. */
export function tryAcquire(path: string): AcquireResult {
  const info = newLockInfo();
  try {
    symlinkSync(formatLock(info), path);
    return { ok: true, info };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return { ok: false, holder: readLock(path) };
  }
}

/**
 * Remove a stale lock, but only the one we judged stale: the lock is renamed
 * aside first (atomic), and if what we moved turns out to be a fresh lock of
 * someone faster, it is put back.
 */
export function breakStale(path: string, seen: LockInfo | undefined): boolean {
  const aside = `${path}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch {
    return false;
  }
  const moved = readLock(aside);
  // Same token *and* pid: a worker adopting the lock meanwhile keeps the token but changes the pid.
  // An unreadable lock (seen undefined) is broken only if what we moved is still unreadable.
  if (moved === undefined || (seen !== undefined && moved.token === seen.token && moved.pid === seen.pid)) {
    rmSync(aside, { recursive: true, force: true });
    return true;
  }
  try {
    linkSync(aside, path);
  } catch {
    /* the lock was re-created meanwhile */
  }
  unlinkSync(aside);
  return false;
}

/** Hand the lock to another process (the worker), if we still own it. */
export function adopt(path: string, token: string, pid: number): boolean {
  const cur = readLock(path);
  if (!cur || cur.token !== token) return false;
  const next: LockInfo = { ...cur, pid, pidStart: processStart(pid), host: thisHost() };
  const tmp = `${path}.${pid}.adopt`;
  // A leftover of this pid's killed predecessor (pids are reused) would make symlink(2) fail.
  try {
    unlinkSync(tmp);
  } catch {
    /* the usual case: none */
  }
  symlinkSync(formatLock(next), tmp);
  renameSync(tmp, path);
  return true;
}

/** Whether something is at the lock's path (a lock's target names no file: existsSync would say no). */
export function lockPresent(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Release the lock if it is still ours. */
export function release(path: string, token: string): void {
  const cur = readLock(path);
  if (cur && cur.token === token) {
    try {
      unlinkSync(path);
    } catch {
      /* released by the other holder of the token */
    }
  }
}

/**
 * Remove the temporary files of lock operations (`<key>.<pid>.adopt`,
 * `<key>.stale.<pid>.<rand>`, and an older smke's `<key>.<pid>.<token>`) whose
 * process is gone: a kill between creating and renaming one leaves it behind.
 */
export function cleanLockLeftovers(locksDir: string): void {
  let names: string[];
  try {
    names = readdirSync(locksDir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^[0-9a-f]{64}\.(?:stale\.)?(\d+)\./.exec(n);
    if (m && !pidAlive(Number(m[1]))) {
      try {
        unlinkSync(join(locksDir, n));
      } catch {
        /* removed by another run */
      }
    }
  }
}
