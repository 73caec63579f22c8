import { spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readProc } from '../../src/runtime/proc.js';

/** This process's descriptors open on `path`. */
const openOn = (path: string): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;

const forks = (keep: boolean): number => Number(/^processes (\d+)$/m.exec(readProc('/proc/stat', keep) ?? '')?.[1]);

describe('readProc', () => {
  it('a kept file is read afresh each time through one descriptor (the stray scan counts forks this way)', () => {
    const before = forks(true);
    for (let i = 0; i < 3; i++) expect(spawnSync('true').status).toBe(0);
    // The count the kernel produces now, not the text of the first read.
    const kept = forks(true);
    expect(kept).toBeGreaterThanOrEqual(before + 3);
    // A fresh open reads the same count, or a later one (the machine's other processes fork too).
    const plain = forks(false);
    expect(plain).toBeGreaterThanOrEqual(kept);
    expect(plain - kept).toBeLessThan(1000);
    expect(openOn('/proc/stat')).toBe(1);
  });

  it('a file read without keep leaves no descriptor open; an unreadable one is undefined', () => {
    expect(readProc('/proc/loadavg')).toMatch(/^\d+\.\d+ /);
    expect(openOn('/proc/loadavg')).toBe(0);
    expect(readProc('/proc/no-such-file', true)).toBeUndefined();
    expect(readProc('/proc/no-such-file')).toBeUndefined();
  });
});
