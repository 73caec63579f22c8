// Faults of the machine, not of smke: a full disk, a damaged state database,
// a path that is not what smke made it. Each gets a message that says what
// happened and what to do, and exit code 1; only a bug in smke itself still
// reaches the CLI's "internal error" (exit 70).

import { existsSync, statfsSync } from 'node:fs';
import { SetupError } from './errors.js';
import { layout } from './layout.js';
import { damaged } from './state.js';
import { moveAside } from './staterepair.js';

interface SystemError extends Error {
  code?: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

/** Whether the file system holding `dir` has no room left (for messages about SQLite's I/O errors, which hide ENOSPC). */
function diskFull(dir: string): boolean {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize < 64 * 1024 || s.ffree === 0;
  } catch {
    return false;
  }
}

/** Whether `e` says the disk holding `dir` is full (SQLite hides ENOSPC behind its own I/O codes). */
export function isDiskFull(e: unknown, dir: string): boolean {
  const code = String((e as { code?: unknown }).code ?? '');
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE') return true;
  return (code.startsWith('SQLITE_') || code.startsWith('E')) && diskFull(dir);
}

const FULL = 'the disk is full: free some space (`smke gc` removes store entries no recent run used, and works on a full disk) and rerun';

/**
 * The message for an error caused by the environment, or undefined for a bug.
 * `projectDir` locates .smke/ (the CLI runs in the project).
 */
export function describeFault(e: unknown, projectDir = process.cwd()): string | undefined {
  if (!(e instanceof Error)) return undefined;
  if (e instanceof SetupError) return e.message;
  const err = e as SystemError;
  const code = typeof err.code === 'string' ? err.code : '';
  const lay = layout(projectDir);
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return `${err.path ? `writing ${err.path}: ` : ''}${FULL}`;
  const bad = damaged(lay.dbPath, e);
  if (bad) {
    // Found in the middle of a command: move it aside now, so the next command starts a new one and rebuilds it.
    let where = '';
    try {
      if (existsSync(bad.path)) where = `; moved it to ${moveAside(bad.path)}`;
    } catch {
      /* reported below as is */
    }
    return `${bad.message}${where}. Rerun the command: smke starts a new state database and rebuilds what the store's manifests record (run history is lost).`;
  }
  if (code.startsWith('SQLITE_')) {
    if (diskFull(lay.smkeDir) || code === 'SQLITE_IOERR_SHMSIZE') return `the state database ${lay.dbPath} could not be written (${code}): ${FULL}`;
    if (code.startsWith('SQLITE_BUSY'))
      return `the state database ${lay.dbPath} stayed locked by another smke process for 10 s (${code}): wait for it, or stop it, and rerun`;
    if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_PERM') {
      return `the state database ${lay.dbPath} cannot be opened or written (${code}: ${err.message}): check that ${lay.smkeDir} is writable and its disk is healthy`;
    }
    return undefined;
  }
  if (err.syscall && /^E[A-Z]+$/.test(code)) {
    if (diskFull(lay.smkeDir)) return `${err.syscall} ${err.path ?? ''} failed (${code}); ${FULL}`;
    const what: Record<string, string> = {
      EACCES: 'permission denied: check the owner and mode of that path',
      EPERM: 'operation not permitted: check the owner and mode of that path',
      EROFS: 'the file system is read-only',
      ENOTDIR: 'a path smke uses as a directory is a file: move that file away',
      EISDIR: 'a path smke uses as a file is a directory: move it away',
      EEXIST: 'something else already exists there: move it away',
      ENOENT: 'it does not exist (was it deleted while smke ran?)',
      EMFILE: 'too many open files: raise the limit (ulimit -n)',
      EIO: 'the disk reported an I/O error',
    };
    const path = err.path ? ` ${err.path}${err.dest ? ` -> ${err.dest}` : ''}` : '';
    return `${err.syscall}${path} failed (${code}): ${what[code] ?? err.message}`;
  }
  return undefined;
}
