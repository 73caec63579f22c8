// Reading Linux's /proc: small files read often (every lock taken, every
// stray scan), so each read is one open, one read and one close into a reused
// buffer (readFileSync adds an fstat, reads in growing buffers and allocates
// each). The few files read on every stage (`keep`) stay open: a read from
// offset 0 makes the kernel produce their content afresh, so each later read
// is one pread instead of three system calls.

import { closeSync, openSync, readSync } from 'node:fs';

const procBuf = Buffer.alloc(1 << 16);

/** Descriptors of the /proc files read with `keep` (opened close-on-exec: programs never inherit them). */
const kept = new Map<string, number>();

/**
 * The text of a /proc file (all of it up to 64 KiB, enough for the small ones this is for), or undefined
 * if unreadable. `keep`: leave it open for the next read; only for files of the whole system or of this
 * process (a /proc/<pid> file of another process would pin that process's entry).
 */
export function readProc(path: string, keep = false): string | undefined {
  let fd = kept.get(path);
  // Closed after the read only if opened for it: a kept descriptor stays, whoever reads through it.
  const close = fd === undefined && !keep;
  if (fd === undefined) {
    try {
      fd = openSync(path, 'r');
    } catch {
      return undefined;
    }
    if (keep) kept.set(path, fd);
  }
  try {
    return procBuf.toString('latin1', 0, readSync(fd, procBuf, 0, procBuf.length, 0));
  } catch {
    return undefined;
  } finally {
    if (close) closeSync(fd);
  }
}

/**
 * The fields of /proc/<pid>/stat after the parenthesised command name (which
 * may contain spaces): [0] is the state, [2] the process group, [19] the start
 * time. Undefined when the process is gone or /proc is not there.
 */
export function procStatFields(pid: number | 'self'): string[] | undefined {
  const stat = readProc(`/proc/${pid}/stat`, pid === 'self');
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
