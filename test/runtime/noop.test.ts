// The no-op fast path must answer "everything cached" only when that is true.
import { mkdirSync, readFileSync, readdirSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/compiler/plan.js';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { StateDb } from '../../src/runtime/state.js';
import { loadPlan } from '../../src/runtime/load-plan.js';
import { planDigest } from '../../src/runtime/plancache.js';
import { prestartPool } from '../../src/runtime/pool-start.js';
import { capture, exec, makePlan, tempProject } from './helpers.js';

/** Alive and not a zombie (a killed child not yet reaped is gone for this purpose). */
const pidAlive = (pid: number): boolean => {
  try {
    return !/^\S+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject();
});
afterEach(() => proj.cleanup());

const old = (p: string): void => {
  const t = new Date(Date.now() - 60_000);
  utimesSync(p, t, t);
};

/** The plan through the plan cache, as the CLI loads it: the fast path keys on the cached plan. */
const viaPlanCache = (compiled: Plan) => async (): Promise<Plan> =>
  (await loadPlan({ file: join(proj.dir, 'p.smke'), projectDir: proj.dir, compile: async () => ({ plan: compiled, exitCode: 0 }) })).plan!;

/** The last run's `same_as`: the run a fast-path answer repeated, null for an ordinary run. */
const lastSameAs = (): number | null => {
  const db = new StateDb(join(proj.dir, '.smke/state.db'));
  const r = db.runs(1)[0]!.same_as;
  db.close();
  return r;
};

describe('no-op fast path', () => {
  it('answers from the snapshot only while every input, entry, link and env value is unchanged', async () => {
    mkdirSync(join(proj.dir, 'data'));
    writeFileSync(join(proj.dir, 'data/a.tsv'), 'a\n');
    writeFileSync(join(proj.dir, 'p.smke'), 'smke 1\n');
    old(join(proj.dir, 'data/a.tsv'));
    old(join(proj.dir, 'data'));
    const compiled = makePlan(proj.dir, [
      { id: 'cat', env: ['MODE'], params: exec('cat data/*.tsv > {out}/all', { inputs: ['data/*.tsv'], outputs: ['all'] }) },
    ]);
    compiled.sources = [{ path: join(proj.dir, 'p.smke'), sha256: '' }];
    // Through the plan cache, as the CLI does: the fast path keys on the cached plan.
    const load = viaPlanCache(compiled);
    const run = async (env: Record<string, string> = { MODE: 'x' }) => {
      const c = capture();
      const r = await runPlan({ plan: await load(), bus: c.bus, env });
      return { ...r, reasons: c.of('planned').map((e) => e.reasons.join('; ')) };
    };
    const sameAs = (): (number | null)[] => {
      const db = new StateDb(join(proj.dir, '.smke/state.db'));
      const r = db
        .runs(100)
        .reverse()
        .map((x) => x.same_as);
      db.close();
      return r;
    };

    expect((await run()).ran).toBe(1);
    expect(await run()).toMatchObject({ ran: 0, cached: 1 });
    expect(sameAs()).toEqual([null, 1]); // the second run was the fast path, repeating run 1

    // A new file in a globbed directory: the directory's mtime gives it away.
    writeFileSync(join(proj.dir, 'data/b.tsv'), 'b\n');
    old(join(proj.dir, 'data/b.tsv'));
    old(join(proj.dir, 'data')); // (a fresh mtime would be "racy" and keep the fast path off)
    expect(await run()).toMatchObject({ ran: 1, reasons: ['input data/b.tsv added'] });
    expect(await run()).toMatchObject({ ran: 0 });
    expect(sameAs().slice(-1)).toEqual([3]);

    // Same size, new content and mtime.
    writeFileSync(join(proj.dir, 'data/a.tsv'), 'A\n');
    old(join(proj.dir, 'data/a.tsv'));
    expect(await run()).toMatchObject({ ran: 1, reasons: ['input data/a.tsv changed'] });
    expect(readFileSync(join(proj.dir, 'results/cat/all'), 'utf8')).toBe('A\nb\n');

    // A declared env value.
    expect(await run({ MODE: 'y' })).toMatchObject({ ran: 1, reasons: ['env MODE changed'] });
    expect(await run({ MODE: 'y' })).toMatchObject({ ran: 0 });

    // A deleted results link is put back (by the ordinary path).
    unlinkSync(join(proj.dir, 'results/cat'));
    expect(await run({ MODE: 'y' })).toMatchObject({ ran: 0 });
    expect(readFileSync(join(proj.dir, 'results/cat/all'), 'utf8')).toBe('A\nb\n');

    // A tampered store entry is never used.
    writeFileSync(join(proj.dir, 'results/cat/all'), 'evil, and longer\n');
    expect(await run({ MODE: 'y' })).toMatchObject({ ran: 1 });
    expect(readFileSync(join(proj.dir, 'results/cat/all'), 'utf8')).toBe('A\nb\n');

    // A changed plan (here: a new source text) is a different snapshot.
    writeFileSync(join(proj.dir, 'p.smke'), 'smke 1\n# edited\n');
    expect(await run({ MODE: 'y' })).toMatchObject({ ran: 0 });
    const runs = sameAs();
    expect(runs[runs.length - 1]).toBeNull();
    rmSync(join(proj.dir, '.smke/plans'), { recursive: true });
  });

  it('a snapshot whose stat list is damaged, of another snapshot, or missing is not trusted', async () => {
    writeFileSync(join(proj.dir, 'in.txt'), 'i\n');
    old(join(proj.dir, 'in.txt'));
    writeFileSync(join(proj.dir, 'p.smke'), 'smke 1\n');
    const compiled = makePlan(proj.dir, [{ id: 'a', params: exec('cat in.txt > {out}/x', { inputs: ['in.txt'], outputs: ['x'] }) }]);
    compiled.sources = [{ path: join(proj.dir, 'p.smke'), sha256: '' }];
    const plan = viaPlanCache(compiled);
    expect((await runPlan({ plan: await plan(), bus: capture().bus })).ran).toBe(1);
    const planFile = (suffix: string): string =>
      join(
        proj.dir,
        '.smke/plans',
        readdirSync(join(proj.dir, '.smke/plans')).find((n) => n.endsWith(suffix))!,
      );
    // Record 0 is the input; its mtime's nanoseconds are the sixth number of the record (the list's format: native/stat-check.c).
    const MTIME_NS_OF_FIRST = 32 + 5 * 8;
    const edits: ((b: Buffer) => Buffer | undefined)[] = [
      (b) => b.subarray(0, b.length - 8), // short
      (b) => Buffer.concat([b, b.subarray(0, 8)]), // too long
      (b) => {
        const c = Buffer.from(b);
        c.writeDoubleLE(c.readDoubleLE(MTIME_NS_OF_FIRST) + 1, MTIME_NS_OF_FIRST);
        return c;
      }, // the input's mtime, one nanosecond off
      () => undefined, // missing
    ];
    for (const edit of edits) {
      // The snapshot is good (the last ordinary run wrote it): it answers, and its list is then damaged.
      expect(await runPlan({ plan: await plan(), bus: capture().bus })).toMatchObject({ ran: 0 });
      expect(lastSameAs()).not.toBeNull();
      const list = planFile('.noop.stat');
      const edited = edit(readFileSync(list));
      if (edited) writeFileSync(list, edited);
      else unlinkSync(list);
      expect(await runPlan({ plan: await plan(), bus: capture().bus })).toMatchObject({ ran: 0, cached: 1 });
      expect(lastSameAs()).toBeNull(); // answered by the ordinary path, which writes a good snapshot again
    }

    // The list of another snapshot (same format, another id) is not this one's.
    expect(await runPlan({ plan: await plan(), bus: capture().bus })).toMatchObject({ ran: 0 });
    const snap = JSON.parse(readFileSync(planFile('.noop.json'), 'utf8')) as { statList: string };
    snap.statList = snap.statList.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    writeFileSync(planFile('.noop.json'), JSON.stringify(snap));
    expect(await runPlan({ plan: await plan(), bus: capture().bus })).toMatchObject({ ran: 0, cached: 1 });
    expect(lastSameAs()).toBeNull();
  });

  it('is not used with --only, --force or --dry-run', async () => {
    writeFileSync(join(proj.dir, 'p.smke'), 'smke 1\n');
    const compiled = makePlan(proj.dir, [{ id: 'a', params: exec('echo > {out}/x') }]);
    compiled.sources = [{ path: join(proj.dir, 'p.smke'), sha256: '' }];
    const plan = viaPlanCache(compiled);
    await runPlan({ plan: await plan(), bus: capture().bus });
    expect(await runPlan({ plan: await plan(), bus: capture().bus, force: ['a'] })).toMatchObject({ ran: 1 });
    const c = capture();
    await runPlan({ plan: await plan(), bus: c.bus, dryRun: true });
    expect(c.of('summary')[0]!.dryRun).toBe(true);
  });

  it('runPlan checks the snapshot again only for a plan the caller did not check, and closes a pool started for it', async () => {
    writeFileSync(join(proj.dir, 'p.smke'), 'smke 1\n');
    const compiled = makePlan(proj.dir, [{ id: 'a', params: exec('echo > {out}/x') }]);
    compiled.sources = [{ path: join(proj.dir, 'p.smke'), sha256: '' }];
    const plan = viaPlanCache(compiled);
    expect((await runPlan({ plan: await plan(), bus: capture().bus })).ran).toBe(1);
    const p = await plan();
    const digest = planDigest(p)!;
    // Checked and found stale by the caller (smke run does so before it loads the plan): the ordinary path.
    expect(await runPlan({ plan: p, bus: capture().bus, snapshotChecked: digest })).toMatchObject({ ran: 0, cached: 1 });
    expect(lastSameAs()).toBeNull();
    // A pool started ahead for a run the snapshot answers: the fast path, and the unused worker is gone.
    const pool = await prestartPool(p, { defaultExecutor: 'local', logsDir: join(proj.dir, '.smke/logs') });
    expect(pool).toBeDefined();
    const workers = [...(pool as unknown as { workers: Set<{ pid: number }> }).workers].map((w) => w.pid);
    expect(workers).toHaveLength(1);
    expect(await runPlan({ plan: await plan(), bus: capture().bus, pool })).toMatchObject({ ran: 0, cached: 1 });
    expect(lastSameAs()).not.toBeNull();
    for (let i = 0; i < 100 && pidAlive(workers[0]!); i++) await new Promise((r) => setTimeout(r, 20));
    expect(pidAlive(workers[0]!)).toBe(false);
  });
});
