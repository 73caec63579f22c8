// Deferred durability: pooled workers publish without syncing, the
// orchestrator syncs the store once when its run ends, and an entry recorded
// in another boot before that sync is re-read by content before it is used.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Digester } from '../../src/runtime/digest.js';
import { bootId, signatureTrusted } from '../../src/runtime/durability.js';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { StateDb } from '../../src/runtime/state.js';
import { FakeExecutor } from './fake-executor.js';
import { capture, exec, makePlan, ref, tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-durable-');
});
afterEach(() => {
  vi.restoreAllMocks();
  proj.cleanup();
});

const plan = () =>
  makePlan(proj.dir, [
    { id: 'a', params: exec('echo a > {out}/a.txt', { outputs: ['a.txt'] }) },
    { id: 'b', params: exec(['sh', '-c', 'cat "$0" > {out}/b.txt; echo b >> {out}/b.txt', ref('a', 'a')], { outputs: ['b.txt'] }) },
    { id: 'c', params: exec('echo c > {out}/c.txt', { outputs: ['c.txt'] }) },
  ]);

const marks = (): Record<string, string | null> => {
  const db = new StateDb(join(proj.dir, '.smke/state.db'));
  try {
    return Object.fromEntries([...db.entries().values()].map((e) => [e.instance, e.unsyncedBoot]));
  } finally {
    db.close();
  }
};

const setMarks = (boot: string | null, instances: string[]): void => {
  const db = new StateDb(join(proj.dir, '.smke/state.db'));
  db.db.prepare(`UPDATE entries SET unsynced_boot = ? WHERE instance IN (${instances.map(() => '?').join(',')})`).run(boot, ...instances);
  db.close();
};

describe('signatureTrusted', () => {
  it('trusts a recorded stat signature when the entry is known synced or was recorded in this boot, never after another boot', () => {
    const cases: [string | null, string | undefined, boolean][] = [
      [null, 'boot-1', true],
      [null, undefined, true],
      ['boot-1', 'boot-1', true],
      ['boot-0', 'boot-1', false],
      ['boot-1', undefined, false],
      ['', 'boot-1', false],
    ];
    for (const [mark, boot, want] of cases) expect([mark, boot, signatureTrusted(mark, boot)]).toEqual([mark, boot, want]);
  });

  it('entries recorded by an older smke (before the column) read as synced: it synced before every rename', () => {
    const path = join(proj.dir, 'old.db');
    let db = new StateDb(path);
    const files = [{ path: 'o.txt', size: 1, mtimeNs: '1', ino: '2', ctimeNs: '3', digest: 'd' }];
    db.recordEntry('e'.repeat(64) as never, 'old', files, 1, null);
    db.db.exec('ALTER TABLE entries DROP COLUMN unsynced_boot');
    db.db.pragma('user_version = 6');
    db.close();
    db = new StateDb(path);
    try {
      expect([...db.entries().values()]).toEqual([{ instance: 'old', files, lastRun: 1, unsyncedBoot: null }]);
      db.recordEntry('f'.repeat(64) as never, 'new', files, 2, 'boot-1');
      expect(db.unsyncedEntries('boot-1')).toEqual(['f'.repeat(64)]);
      expect(db.unsyncedEntries('boot-2')).toEqual([]);
      db.markSynced(db.unsyncedEntries('boot-1'));
      expect(db.unsyncedEntries('boot-1')).toEqual([]);
    } finally {
      db.close();
    }
  });

  it('reads this machine’s boot id (Linux), the same on every call', () => {
    const b = bootId();
    expect(b).toMatch(/^[0-9a-f-]{36}$/);
    expect(bootId()).toBe(b);
  });
});

describe('the end-of-run sync', () => {
  it('pooled jobs are asked to publish without syncing; a job with a worker of its own is not', async () => {
    const fake = new FakeExecutor();
    const p = makePlan(proj.dir, [
      { id: 'small', params: exec('echo s > {out}/s.txt', { outputs: ['s.txt'] }) },
      // Given a variable from smke's environment: a worker process of its own.
      { id: 'own', params: exec('echo "$HOME" > {out}/o.txt', { outputs: ['o.txt'] }), env: ['HOME'] },
    ]);
    const run = runPlan({ plan: p, bus: capture().bus, executor: fake });
    const small = await fake.job('small');
    const own = await fake.job('own');
    expect(small.request.pooled?.deferSync).toBe(true);
    expect(own.request.pooled).toBeUndefined();
    expect(own.spec.deferSync).toBeUndefined();
    await small.succeed({ 's.txt': 's\n' });
    await own.succeed({ 'o.txt': 'o\n' });
    expect(await run).toMatchObject({ exitCode: 0, ran: 2 });
    // Recorded in this boot, then synced together when the run ended.
    expect(marks()).toEqual({ small: null, own: null });
  });

  it('after a real run every recorded entry is marked synced, and the next run trusts their stat signatures', async () => {
    expect(await runPlan({ plan: plan(), bus: capture().bus })).toMatchObject({ exitCode: 0, ran: 3 });
    expect(marks()).toEqual({ a: null, b: null, c: null });
    const read = vi.spyOn(Digester.prototype, 'file');
    expect(await runPlan({ plan: plan(), bus: capture().bus })).toMatchObject({ exitCode: 0, ran: 0, cached: 3 });
    expect(read.mock.calls.filter(([p]) => p.includes('/.smke/store/'))).toEqual([]);
  });

  it('entries recorded in another boot before their sync are re-read by content; those of this boot are not', async () => {
    await runPlan({ plan: plan(), bus: capture().bus });
    // As if the machine went down after a run that was killed before its sync (a), and one killed in this boot (c).
    setMarks('0f0f0f0f-dead-4bee-8bad-000000000000', ['a', 'b']);
    setMarks(bootId()!, ['c']);
    const read = vi.spyOn(Digester.prototype, 'file');
    // A plan built by hand has no plan-cache digest, so no fast path: the ordinary path checks every entry.
    const r = await runPlan({ plan: plan(), bus: capture().bus });
    expect(r).toMatchObject({ exitCode: 0, ran: 0, cached: 3 });
    const files = read.mock.calls.map(([p]) => p).filter((p) => p.includes('/.smke/store/'));
    expect(files.map((p) => p.replace(/^.*\//, '')).sort()).toEqual(['a.txt', 'b.txt']);
    // Read again, found whole, and synced: trusted by stat from now on.
    expect(marks()).toEqual({ a: null, b: null, c: null });
  });

  it('an entry of another boot that was damaged is moved out and rerun, not used', async () => {
    await runPlan({ plan: plan(), bus: capture().bus });
    setMarks('0f0f0f0f-dead-4bee-8bad-000000000000', ['a']);
    // A crash before the sync can leave the right size and stat with other bytes; here the bytes change
    // (and so the ctime: the stat signature alone would have caught this one too, which the mark must not depend on).
    const entry = join(proj.dir, 'results', 'a');
    chmodSync(entry, 0o755);
    chmodSync(join(entry, 'a.txt'), 0o644);
    writeFileSync(join(entry, 'a.txt'), 'x\n');
    const c = capture();
    const r = await runPlan({ plan: plan(), bus: c.bus });
    expect(r).toMatchObject({ exitCode: 0, ran: 1 });
    expect(
      c
        .of('warning')
        .map((w) => w.message)
        .join('\n'),
    ).toMatch(/store entry \w+ of a is corrupted \(output a\.txt does not match its digest\)/);
  });

  it('without `sync` on the PATH the entries are synced one by one, and marked synced', async () => {
    const bin = join(proj.dir, 'nobin');
    mkdirSync(bin);
    const path = process.env.PATH;
    process.env.PATH = bin;
    try {
      const fake = new FakeExecutor();
      const run = runPlan({ plan: makePlan(proj.dir, [{ id: 'x', params: exec('true', { outputs: ['x.txt'] }) }]), bus: capture().bus, executor: fake });
      await (await fake.job('x')).succeed({ 'x.txt': 'x\n' });
      expect(await run).toMatchObject({ exitCode: 0, ran: 1 });
    } finally {
      process.env.PATH = path;
    }
    expect(marks()).toEqual({ x: null });
  });
});
