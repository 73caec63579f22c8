import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adopt, breakStale, isStale, pidAlive, readLock, release, tryAcquire } from '../../src/runtime/locks.js';
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
    const a = tryAcquire(p, 'a');
    expect(a.ok).toBe(true);
    const b = tryAcquire(p, 'a');
    expect(b).toMatchObject({ ok: false, holder: { pid: process.pid, host: hostname(), instance: 'a' } });
    if (b.ok || !b.holder) throw new Error();
    expect(isStale(b.holder)).toBe(false);
    if (a.ok) release(p, a.info.token);
    expect(tryAcquire(p, 'a').ok).toBe(true);
  });

  it('takes over a lock whose process is gone', () => {
    const p = join(proj.dir, 'k');
    const pid = Number(deadPid());
    expect(pidAlive(pid)).toBe(false);
    writeFileSync(p, JSON.stringify({ pid, host: hostname(), start: 0, token: 't0', instance: 'a' }));
    const r = tryAcquire(p, 'a');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(isStale(r.holder!)).toBe(true);
    expect(breakStale(p, r.holder)).toBe(true);
    expect(tryAcquire(p, 'a').ok).toBe(true);
  });

  it('never calls a lock of another host stale', () => {
    expect(isStale({ pid: Number(deadPid()), host: 'elsewhere', start: 0, token: 't', instance: 'a' })).toBe(false);
  });

  it('does not break a lock that was replaced since it was judged stale', () => {
    const p = join(proj.dir, 'k');
    const fresh = tryAcquire(p, 'a');
    if (!fresh.ok) throw new Error();
    expect(breakStale(p, { pid: 1, host: hostname(), start: 0, token: 'old', instance: 'a' })).toBe(false);
    expect(readLock(p)?.token).toBe(fresh.info.token);
  });

  it('hands the lock to the worker, and only the token holder releases it', () => {
    const p = join(proj.dir, 'k');
    const a = tryAcquire(p, 'a');
    if (!a.ok) throw new Error();
    expect(adopt(p, 'wrong', 4242)).toBe(false);
    expect(adopt(p, a.info.token, process.ppid)).toBe(true);
    expect(JSON.parse(readFileSync(p, 'utf8')).pid).toBe(process.ppid);
    release(p, 'wrong');
    expect(readLock(p)).toBeDefined();
    release(p, a.info.token);
    expect(readLock(p)).toBeUndefined();
  });
});
