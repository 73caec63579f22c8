import { existsSync, readFileSync, readlinkSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { listEntries, readManifest } from '../../src/runtime/store.js';
import { capture, exec, makePlan, ref, tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject();
});
afterEach(() => proj.cleanup());

describe('runPlan with the local executor', () => {
  it('runs a two-stage exec pipeline, then finds everything cached', async () => {
    writeFileSync(join(proj.dir, 'in.txt'), 'hello\n');
    const plan = () =>
      makePlan(proj.dir, [
        { id: 'a', params: exec(['sh', '-c', 'tr a-z A-Z < in.txt > {out}/up.txt'], { inputs: ['in.txt'], outputs: ['up.txt'] }) },
        { id: 'b', params: exec(['sh', '-c', 'cat "$0" "$0" > {out}/twice.txt', ref('a', 'up')], { outputs: ['twice.txt'] }) },
      ]);
    const c1 = capture();
    const r1 = await runPlan({ plan: plan(), bus: c1.bus, jobs: 2 });
    expect(r1).toMatchObject({ exitCode: 0, ran: 2, cached: 0, failed: 0 });
    expect(readFileSync(join(proj.dir, 'results/b/twice.txt'), 'utf8')).toBe('HELLO\nHELLO\n');
    expect(c1.of('planned').map((e) => e.reasons)).toEqual([['never run'], ['never run']]);
    const keys = listEntries(join(proj.dir, '.smke/store'));
    expect(keys).toHaveLength(2);
    const m = readManifest(join(proj.dir, '.smke/store', keys[0]!))!;
    expect(m.outputs).toBeTypeOf('object');
    expect(existsSync(join(proj.dir, '.smke/store', keys[0]!, '_smke/log'))).toBe(true);
    expect(readlinkSync(join(proj.dir, 'results/a'))).toMatch(/^\.\.\/\.smke\/store\/[0-9a-f]{64}$/);

    const c2 = capture();
    const r2 = await runPlan({ plan: plan(), bus: c2.bus });
    expect(r2).toMatchObject({ exitCode: 0, ran: 0, cached: 2 });

    writeFileSync(join(proj.dir, 'in.txt'), 'bye\n');
    const c3 = capture();
    const r3 = await runPlan({ plan: plan(), bus: c3.bus });
    expect(r3).toMatchObject({ exitCode: 0, ran: 2, cached: 0 });
    // b's key is known only once a has run (early cutoff, test/runtime/cutoff.test.ts).
    expect(c3.of('planned').map((e) => e.reasons)).toEqual([['input in.txt changed'], ['upstream a changed (cut off if its output is unchanged)']]);
    expect(readFileSync(join(proj.dir, 'results/b/twice.txt'), 'utf8')).toBe('BYE\nBYE\n');
  });

  it('a failed stage publishes nothing and points at its log', async () => {
    mkdirSync(join(proj.dir, 'x'));
    const plan = makePlan(proj.dir, [
      { id: 'bad', params: exec(['sh', '-c', 'echo partial > {out}/f; echo oops >&2; exit 3']) },
      { id: 'after_bad', params: exec(['true', ref('bad')]) },
    ]);
    const c = capture();
    const r = await runPlan({ plan, bus: c.bus });
    expect(r).toMatchObject({ exitCode: 1, failed: 1, skipped: 1, ran: 0 });
    expect(listEntries(join(proj.dir, '.smke/store'))).toEqual([]);
    const failed = c.of('failed')[0]!;
    expect(failed.error).toContain('exited with code 3');
    expect(readFileSync(failed.logPath!, 'utf8')).toContain('oops');
    expect(c.of('skipped').map((e) => e.instance)).toEqual(['after_bad']);
  });
});

describe('a success whose records cannot be written', () => {
  it('fails the run naming why, keeps the user’s file, and the entry is reused once the path is free', async () => {
    const plan = () => makePlan(proj.dir, [{ id: 'a', params: exec('echo made > {out}/x', { outputs: ['x'] }) }]);
    const c = capture();
    // The records (and the results/ link) are written just after the success is announced:
    // the user's file lands in between, where the link would go.
    c.bus.on((e) => {
      if (e.type === 'succeeded') {
        mkdirSync(join(proj.dir, 'results'), { recursive: true });
        writeFileSync(join(proj.dir, 'results/a'), 'mine\n');
      }
    });
    const r = await runPlan({ plan: plan(), bus: c.bus });
    expect(r).toMatchObject({ exitCode: 1, ran: 0, failed: 1 });
    expect(c.of('failed')[0]!.error).toMatch(/^recording its result failed: .*results\/a is not a link smke made/);
    expect(readFileSync(join(proj.dir, 'results/a'), 'utf8')).toBe('mine\n');
    // The entry itself was published whole: with the path free, the next run uses it.
    rmSync(join(proj.dir, 'results/a'));
    const c2 = capture();
    expect(await runPlan({ plan: plan(), bus: c2.bus })).toMatchObject({ exitCode: 0, ran: 0, cached: 1 });
    expect(readFileSync(join(proj.dir, 'results/a/x'), 'utf8')).toBe('made\n');
  });
});
