// Reading Linux's /proc: small files read often (every lock taken, every
// stray scan), so each read is one open, one read and one close into a reused
// buffer (readFileSync adds an fstat, reads in growing buffers and allocates
// each).

import { closeSync, openSync, readSync } from 'node:fs';

const procBuf = Buffer.alloc(1 << 16);

/** The text of a /proc file (all of it up to 64 KiB, enough for the small ones this is for), or undefined if unreadable. */
export function readProc(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    return procBuf.toString('latin1', 0, readSync(fd, procBuf, 0, procBuf.length, 0));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The fields of /proc/<pid>/stat after the parenthesised command name (which
 * may contain spaces): [0] is the state, [2] the process group, [19] the start
 * time. Undefined when the process is gone or /proc is not there.
 */
export function procStatFields(pid: number | 'self'): string[] | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
