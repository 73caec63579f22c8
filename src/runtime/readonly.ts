// Published store entries are read-only (docs/runtime.md, "Isolation"): a
// stage that writes through a path into another entry fails instead of
// silently changing a result other stages were keyed on. Only smke itself
// removes entries (gc, corruption), and it makes them writable first. Note
// that root ignores these modes; the exec sandbox's read-only binds do not.

import { chmodSync, lstatSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

const WRITE = 0o222;

/** A directory sealTree walked: its path under the root it was given ('' for the root) and its mode then. */
export interface SeenDir {
  rel: string;
  mode: number;
}

/** What a sealTree walked, for those who would walk the same tree next (publish: sealDirs, the digests). */
export interface TreeWalk {
  /** Every directory, children before parents. */
  dirs: SeenDir[];
  /** The path under the root of everything else: files, symbolic links, other nodes. */
  others: string[];
}

/**
 * Remove every write bit under `dir` (children before the directory itself),
 * of its files, its directories, or both (`which`). Links are never followed
 * (chmod would change their target, wherever it is), and a file with other
 * hard links is left alone: it may be a project file a stage linked into its
 * output, which is not ours to lock. `walk` collects what was walked (for
 * sealDirs after the tree has been moved, and the digests of its files).
 */
export function sealTree(dir: string, which: 'all' | 'files' | 'dirs' = 'all', walk?: TreeWalk): void {
  seal(dir, '', which, walk);
}

function seal(path: string, rel: string, which: 'all' | 'files' | 'dirs', walk: TreeWalk | undefined): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    // A walk someone will rely on must be whole: what vanished or cannot be read fails it.
    if (walk) throw e;
    return;
  }
  if (!st.isDirectory()) walk?.others.push(rel);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    let names: string[] = [];
    try {
      names = readdirSync(path);
    } catch (e) {
      if (walk) throw e;
      /* unreadable: leave it */
    }
    for (const n of names) seal(join(path, n), rel ? `${rel}/${n}` : n, which, walk);
    walk?.dirs.push({ rel, mode: st.mode });
    if (which === 'files') return;
  } else if (!st.isFile() || st.nlink > 1 || which === 'dirs') return;
  try {
    chmodSync(path, st.mode & 0o7777 & ~WRITE);
  } catch {
    /* not ours */
  }
}

/**
 * Remove the write bits of the directories a `sealTree(…, 'files', walk)` walked, now under `root` (the
 * tree was renamed meanwhile): the same as sealTree(root, 'dirs') without walking the tree again.
 */
export function sealDirs(root: string, walk: TreeWalk): void {
  for (const d of walk.dirs) {
    try {
      chmodSync(d.rel ? join(root, d.rel) : root, d.mode & 0o7777 & ~WRITE);
    } catch {
      /* not ours */
    }
  }
}

/** Give the owner write access to every directory under `dir` again, so it can be moved and removed. */
export function unsealTree(dir: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  try {
    chmodSync(dir, (st.mode & 0o7777) | 0o700);
  } catch {
    /* not ours: the removal will say so */
  }
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) unsealTree(join(dir, n));
}

/** rm -rf that also removes sealed trees (and trees a stage copied read-only directories into). */
export function removeTree(path: string): void {
  // An absent or empty directory (a trivial stage's temporary and scratch
  // directories) costs one rmdir instead of rmSync's walk.
  try {
    rmdirSync(path);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
  }
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw e;
    unsealTree(path);
    rmSync(path, { recursive: true, force: true });
  }
}
