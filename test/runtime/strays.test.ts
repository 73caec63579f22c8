// Which processes the stray scan looks at (./strays.ts): only pids the kernel
// can have handed out since the stage started, or every process when that
// cannot be known. Finding and killing strays is tested end to end in
// test/adversarial/runtime-stray-processes.test.ts.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createdSince, procMark } from '../../src/runtime/strays.js';

const lastPid = (): number => Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
const canRead = (() => {
  try {
    return lastPid() > 0;
  } catch {
    return false;
  }
})();

describe.runIf(canRead)('stray scan candidates', () => {
  it('a process started after the mark is a candidate; this one, older, is not', async () => {
    const mark = procMark();
    expect(mark.lastPid).toBeGreaterThan(0);
    const child = spawn('sleep', ['5'], { stdio: 'ignore' });
    try {
      await new Promise((res) => child.once('spawn', res));
      const candidate = createdSince(mark, lastPid());
      expect(candidate).toBeDefined();
      expect(candidate!(child.pid!)).toBe(true);
      expect(candidate!(process.pid)).toBe(false);
      expect(candidate!(mark.lastPid!)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('follows the pid counter round its wrap', () => {
    const mark = { ...procMark(), lastPid: 32000, tasks: 1 };
    const candidate = createdSince(mark, 500)!;
    expect([32001, 32767, 300, 500].map(candidate)).toEqual([true, true, true, true]);
    expect([32000, 501, 10000].map(candidate)).toEqual([false, false, false]);
  });

  it('looks at every process when the range cannot be trusted', () => {
    const mark = procMark();
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    // Nothing known about the start, or the end.
    expect(createdSince(undefined, lastPid())).toBeUndefined();
    expect(createdSince({ ticks: mark.ticks }, lastPid())).toBeUndefined();
    expect(createdSince(mark, undefined)).toBeUndefined();
    // So many processes alive or created since that the counter may have gone all the way round.
    expect(createdSince({ ...mark, tasks: pidMax }, lastPid())).toBeUndefined();
    expect(createdSince({ ...mark, forks: mark.forks! - pidMax }, lastPid())).toBeUndefined();
  });
});
