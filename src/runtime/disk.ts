// The few file-system operations publishing needs, behind an interface (the
// idea of Ninja's DiskInterface) so tests can make a write fail with ENOSPC
// at any step. Everything else uses node:fs directly, and `inParentDir` for
// names made in a directory that may not exist yet.

import * as fs from 'node:fs';
import { dirname } from 'node:path';

/**
 * Run `create`, which makes `path`; if that fails because the directory `path` goes in is missing,
 * make the directory and run it again. For names made often in a directory missing only the first
 * time (a run's logs, the store, results/): one system call where making the directory first took
 * three.
 */
export function inParentDir<T>(path: string, create: () => T): T {
  try {
    return create();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || fs.existsSync(dirname(path))) throw e;
    fs.mkdirSync(dirname(path), { recursive: true });
    return create();
  }
}

export interface Disk {
  writeFile(path: string, data: string | Uint8Array): void;
  /**
   * Give `to` the content of `from`, a file nobody writes any more (a finished job's log): a hard
   * link where both are on one file system (no new inode's data to write), a copy elsewhere.
   */
  linkOrCopy(from: string, to: string): void;
  /**
   * fsync a file or a directory. Asynchronous, so that publishing can sync
   * every file of an entry at once: the file system then merges them into
   * one journal commit and one cache flush instead of one per file.
   */
  fsync(path: string): void | Promise<void>;
  rename(from: string, to: string): void;
}

export const realDisk: Disk = {
  writeFile: (p, d) => fs.writeFileSync(p, d),
  linkOrCopy: (a, b) => {
    try {
      fs.linkSync(a, b);
    } catch (e) {
      // Another file system (a store given with --store), or one without hard links.
      if (!['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      fs.copyFileSync(a, b);
    }
  },
  // Callback fs rather than fs.promises: a FileHandle costs more CPU than the
  // sync itself on a small file, and a trivial stage syncs five of them.
  fsync: (path) =>
    new Promise<void>((res, rej) => {
      fs.open(path, 'r', (err, fd) => {
        if (err) return rej(err);
        fs.fsync(fd, (syncErr) => fs.close(fd, (closeErr) => (syncErr || closeErr ? rej(syncErr ?? closeErr) : res())));
      });
    }),
  rename: (a, b) => fs.renameSync(a, b),
};
