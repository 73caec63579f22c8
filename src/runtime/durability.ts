// When a published store entry is on disk, not only in the page cache.
//
// A worker of its own (ML stages, Slurm jobs) syncs every file of an entry
// before the rename that publishes it: one fsync round per long stage costs
// nothing. Pooled workers run trivial stages by the thousand, where those
// syncs were the largest cost left per stage; they publish without waiting
// (the rename is still atomic, so a killed process leaves an entry absent or
// whole), and the orchestrator syncs the store's file system once, when its
// run ends. Until that sync, the state database marks every entry it records
// with the boot it was recorded in. Only a crash of the machine can lose page
// cache, and a crash means a new boot: an entry marked with another boot is
// re-verified by content before use, never trusted by its stat signature, so
// an entry damaged by a crash before its sync is rerun, never used.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

let cachedBoot: string | null | undefined;

/** This boot of the machine (Linux's boot_id); undefined where the OS does not say, and then every publish syncs first. */
export function bootId(): string | undefined {
  if (cachedBoot === undefined) {
    try {
      cachedBoot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBoot = null;
    }
  }
  return cachedBoot ?? undefined;
}

/**
 * Whether the stat signature recorded with an entry may stand for its
 * content: always for an entry known synced (no mark), and for one recorded
 * in this boot (its files are whatever the page cache holds, which a stat
 * describes); never for one marked with another boot, or when this boot is
 * unknown.
 */
export function signatureTrusted(unsyncedBoot: string | null, boot: string | undefined): boolean {
  return unsyncedBoot === null || (boot !== undefined && unsyncedBoot === boot);
}

/**
 * Write everything of the file system holding `dir` to disk (syncfs(2), by
 * coreutils' `sync -f`): one call covers every entry published since the last
 * one, however many. False when it could not be done; the caller then syncs
 * file by file.
 */
export function syncFileSystem(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', dir], { timeout: 600_000 }, (err) => resolve(!err));
  });
}
