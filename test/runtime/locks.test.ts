import { spawnSync } from 'node:child_process';
import { lstatSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adopt, breakStale, formatLock, isStale, lockPresent, pidAlive, processStart, readLock, release, tryAcquire } from '../../src/runtime/locks.js';
import { tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject();
});
afterEach(() => proj.cleanup());

/** The pid of a process that has exited. */
function deadPid(): number {
  return spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim() as unknown as number;
}

describe('instance locks', () => {
  it('lets one holder in and tells the next who holds it', () => {
    const p = join(proj.dir, 'k');
    const a = tryAcquire(p);
    expect(a.ok).toBe(true);
    const b = tryAcquire(p);
    expect(b).toMatchObject({ ok: false, holder: { pid: process.pid, pidStart: processStart(process.pid), host: hostname() } });
    if (b.ok || !b.holder) throw new Error();
    expect(isStale(b.holder)).toBe(false);
    if (a.ok) release(p, a.info.token);
    expect(tryAcquire(p).ok).toBe(true);
  });

  it('takes over a lock whose process is gone', () => {
    const p = join(proj.dir, 'k');
    const pid = Number(deadPid());
    expect(pidAlive(pid)).toBe(false);
    symlinkSync(formatLock({ pid, host: hostname(), token: 't0' }), p);
    const r = tryAcquire(p);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(isStale(r.holder!)).toBe(true);
    expect(breakStale(p, r.holder)).toBe(true);
    expect(tryAcquire(p).ok).toBe(true);
  });

  it('never calls a lock of another host stale', () => {
    expect(isStale({ pid: Number(deadPid()), host: 'elsewhere', token: 't' })).toBe(false);
  });

  it('does not break a lock that was replaced since it was judged stale', () => {
    const p = join(proj.dir, 'k');
    const fresh = tryAcquire(p);
    if (!fresh.ok) throw new Error();
    expect(breakStale(p, { pid: 1, host: hostname(), token: 'old' })).toBe(false);
    expect(readLock(p)?.token).toBe(fresh.info.token);
  });

  it('hands the lock to the worker, and only the token holder releases it', () => {
    const p = join(proj.dir, 'k');
    const a = tryAcquire(p);
    if (!a.ok) throw new Error();
    expect(adopt(p, 'wrong', 4242)).toBe(false);
    expect(adopt(p, a.info.token, process.ppid)).toBe(true);
    expect(readLock(p)).toMatchObject({ pid: process.ppid, token: a.info.token, pidStart: processStart(process.ppid) });
    release(p, 'wrong');
    expect(readLock(p)).toBeDefined();
    release(p, a.info.token);
    expect(readLock(p)).toBeUndefined();
  });

  it('is a symbolic link short enough to live in the inode, before and after adoption', () => {
    const p = join(proj.dir, 'k');
    const a = tryAcquire(p);
    if (!a.ok) throw new Error();
    // ext4 keeps targets under 60 bytes in the inode: no data block to allocate or free.
    const short = (): void => {
      expect(lstatSync(p).isSymbolicLink()).toBe(true);
      if (hostname().length <= 20) expect(readlinkSync(p).length).toBeLessThan(60);
    };
    short();
    expect(adopt(p, a.info.token, process.ppid)).toBe(true);
    short();
    release(p, a.info.token);
    expect(lockPresent(p)).toBe(false);
  });

  it("reads an older smke's JSON lock file, and treats garbage as no lock", () => {
    const p = join(proj.dir, 'k');
    writeFileSync(p, JSON.stringify({ pid: 7, pidStart: '99', host: 'h', start: 0, token: 'tok', instance: 'a' }));
    expect(readLock(p)).toEqual({ pid: 7, pidStart: '99', host: 'h', token: 'tok' });
    expect(tryAcquire(p).ok).toBe(false);
    const q = join(proj.dir, 'q');
    for (const target of ['', 'x', '7:1:tok', 'a:1:tok:h', '7:1:tok:h:extra']) {
      symlinkSync(target || '.', q);
      expect(readLock(q)).toBeUndefined();
      release(q, 'tok');
      expect(lockPresent(q)).toBe(true);
      breakStale(q, undefined);
      expect(lockPresent(q)).toBe(false);
    }
    symlinkSync('7::tok:h', q);
    expect(readLock(q)).toEqual({ pid: 7, host: 'h', token: 'tok' });
  });

  it('adopts over a leftover of a killed adoption by the same pid', () => {
    const p = join(proj.dir, 'k');
    const a = tryAcquire(p);
    if (!a.ok) throw new Error();
    symlinkSync('left:over', `${p}.${process.ppid}.adopt`);
    expect(adopt(p, a.info.token, process.ppid)).toBe(true);
    expect(readLock(p)?.pid).toBe(process.ppid);
    expect(lockPresent(`${p}.${process.ppid}.adopt`)).toBe(false);
  });
});
