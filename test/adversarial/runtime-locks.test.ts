// Lock files smke cannot read (empty, garbage, valid JSON that is not a
// lock, a directory) must never make `smke run` wait forever in silence, and
// long waits for a live lock must not leak abort listeners.
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newLockInfo, readLock, staleLock, UNREADABLE_LOCK_GRACE_MS } from '../../src/runtime/locks.js';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { capture, exec, makePlan, tempProject } from '../runtime/helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-adv-locks-');
});
afterEach(() => proj.cleanup());

const plan = () => makePlan(proj.dir, [{ id: 'a', params: exec('echo x > {out}/x', { outputs: ['x'] }) }]);

async function lockPath(): Promise<string> {
  const c = capture();
  await runPlan({ plan: plan(), bus: c.bus, dryRun: true });
  return join(proj.dir, '.smke/locks', c.of('planned')[0]!.key);
}

const old = (p: string): void => {
  const t = new Date(Date.now() - 60_000);
  utimesSync(p, t, t);
};

const BAD: [string, string | Buffer][] = [
  ['empty', ''],
  ['garbage bytes', Buffer.from([0xff, 0x00, 0x13, 0x37, 0x80])],
  ['truncated JSON', '{"pid": 12'],
  ['JSON null', 'null'],
  ['an empty object', '{}'],
  ['an array', '[1,2,3]'],
  ['a pid that is not a number', JSON.stringify({ pid: 'x', host: hostname(), token: 't' })],
  ['no host', JSON.stringify({ pid: process.pid, token: 't' })],
];

describe('unreadable lock files', () => {
  for (const [what, content] of BAD) {
    it(`${what}, long there: taken over at once, with a warning that says so`, async () => {
      const p = await lockPath();
      writeFileSync(p, content);
      old(p);
      expect(readLock(p)).toBeUndefined();
      const c = capture();
      const r = await runPlan({ plan: plan(), bus: c.bus, lockPollMs: 20 });
      expect(r).toMatchObject({ exitCode: 0, ran: 1 });
      // At once: never a wait for the holder (a wall-clock bound would fail on a loaded machine).
      expect(c.of('waiting')).toEqual([]);
      expect(c.of('warning').map((w) => w.message)).toEqual([
        expect.stringMatching(/took over the stale lock of a \(its lock file .* was (empty|not a lock smke wrote \(\d+ bytes\)) for \d+ s\)/),
      ]);
    });
  }

  it('a directory in place of the lock file', async () => {
    const p = await lockPath();
    mkdirSync(p);
    writeFileSync(join(p, 'inside'), 'x');
    old(p);
    const c = capture();
    expect(await runPlan({ plan: plan(), bus: c.bus, lockPollMs: 20 })).toMatchObject({ exitCode: 0, ran: 1 });
    expect(c.of('warning')[0]!.message).toMatch(/was a directory/);
  });

  it('a fresh unreadable lock: waits visibly, then takes it over within the bounded time', async () => {
    const p = await lockPath();
    writeFileSync(p, 'garbage');
    const c = capture();
    const t0 = Date.now();
    const r = await runPlan({ plan: plan(), bus: c.bus, lockPollMs: 50 });
    const took = Date.now() - t0;
    expect(r).toMatchObject({ exitCode: 0, ran: 1 });
    expect(c.of('waiting').map((w) => w.holder)).toEqual(['an unreadable lock file']);
    // Not before the grace; that it ends at all is the test's timeout's to check (a loaded machine is slow).
    expect(took).toBeGreaterThanOrEqual(UNREADABLE_LOCK_GRACE_MS - 1000);
  }, 30_000);

  it('staleLock: a readable live lock is never stale, an unreadable one only after the grace', () => {
    const p = join(proj.dir, 'l');
    writeFileSync(p, JSON.stringify(newLockInfo()));
    expect(staleLock(p, readLock(p))).toBeUndefined();
    writeFileSync(p, 'junk');
    expect(staleLock(p, undefined)).toBeUndefined();
    expect(staleLock(p, undefined, Date.now() + UNREADABLE_LOCK_GRACE_MS + 1)).toMatch(/not a lock smke wrote \(4 bytes\)/);
    expect(staleLock(join(proj.dir, 'absent'), undefined, Date.now() + 1e9)).toBeUndefined();
  });
});

describe('waiting for a live lock', () => {
  it('waits for seconds without MaxListenersExceededWarning, then reuses or runs', async () => {
    const p = await lockPath();
    // Held by this (live) process: the run must wait, polling every 10 ms.
    writeFileSync(p, JSON.stringify(newLockInfo()));
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on('warning', onWarning);
    try {
      const release = setTimeout(() => rmSync(p), 2500);
      const c = capture();
      const r = await runPlan({ plan: plan(), bus: c.bus, lockPollMs: 10 });
      clearTimeout(release);
      expect(r).toMatchObject({ exitCode: 0, ran: 1 });
      expect(c.of('waiting')).toHaveLength(1);
      await new Promise((res) => setImmediate(res));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  }, 30_000);

  it('Ctrl-C while waiting: stops at once, cancelled, exit 130', async () => {
    const p = await lockPath();
    writeFileSync(p, JSON.stringify(newLockInfo()));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const c = capture();
    // The next poll of the lock is 10 minutes away: only the abort can end the wait before the test's timeout.
    const r = await runPlan({ plan: plan(), bus: c.bus, lockPollMs: 600_000, signal: controller.signal });
    expect(r.exitCode).toBe(130);
  });
});
