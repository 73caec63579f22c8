// Instances that share a cache key (same kind, params and upstream under
// different stage names, like the mini pipeline's synthetic data stages).
// They take turns through the key's lock; whatever the first does (fail,
// succeed, fail then succeed on retry), every instance ends with its own
// clear outcome: never an internal error, never another attempt's files.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { listEntries } from '../../src/runtime/store.js';
import { capture, exec, makePlan, ref, tempProject } from '../runtime/helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-adv-samekey-');
});
afterEach(() => proj.cleanup());

const ids = ['syn_a', 'syn_b', 'syn_c'];

function outcomes(c: ReturnType<typeof capture>) {
  const out = new Map<string, string[]>();
  const add = (id: string, what: string): void => {
    out.set(id, [...(out.get(id) ?? []), what]);
  };
  for (const e of c.events) {
    if (e.type === 'succeeded' || e.type === 'skipped' || e.type === 'cancelled') add(e.instance, e.type);
    else if (e.type === 'cached' && e.reused) add(e.instance, 'reused');
    else if (e.type === 'failed') add(e.instance, `failed: ${e.error}`);
  }
  return out;
}

function noInternalErrors(c: ReturnType<typeof capture>): void {
  for (const f of c.of('failed')) expect(f.error).not.toMatch(/ENOENT|internal|job\.json|before reporting a result/);
  expect(readdirSync(join(proj.dir, '.smke/tmp'))).toEqual([]);
}

describe('instances sharing a key', () => {
  it('share one key (the premise)', async () => {
    const c = capture();
    await runPlan({
      plan: makePlan(
        proj.dir,
        ids.map((id) => ({ id, params: exec('exit 3') })),
      ),
      bus: c.bus,
      dryRun: true,
    });
    expect(new Set(c.of('planned').map((e) => e.key)).size).toBe(1);
  });

  for (const jobs of [1, 3]) {
    it(`the first fails: each instance reports the stage's own failure once (-j ${jobs}, -k)`, async () => {
      const c = capture();
      const r = await runPlan({
        plan: makePlan(
          proj.dir,
          ids.map((id) => ({ id, params: exec('echo ran >> ../count; exit 3', { cwd: '.smke' }) })),
        ),
        bus: c.bus,
        jobs,
        keepGoing: true,
      });
      expect(r).toMatchObject({ exitCode: 1, failed: 3, ran: 0 });
      const o = outcomes(c);
      for (const id of ids) expect(o.get(id)).toEqual(['failed: exec: /bin/sh exited with code 3']);
      noInternalErrors(c);
      // Each ran for itself (a failure is not cached): three attempts, one after the other.
      expect(readFileSync(join(proj.dir, 'count'), 'utf8').trim().split('\n')).toHaveLength(3);
    });
  }

  it('the first fails without -k: every instance still gets one clear outcome', async () => {
    const c = capture();
    const r = await runPlan({
      plan: makePlan(
        proj.dir,
        ids.map((id) => ({ id, params: exec('exit 3') })),
      ),
      bus: c.bus,
      jobs: 3,
    });
    expect(r.exitCode).toBe(1);
    const o = outcomes(c);
    for (const id of ids) {
      expect(o.get(id)).toHaveLength(1);
      expect(o.get(id)![0]).toMatch(/^(failed: exec: \/bin\/sh exited with code 3|skipped|cancelled)$/);
    }
    noInternalErrors(c);
  });

  it('the first succeeds: it runs once, the others reuse its entry', async () => {
    const c = capture();
    const r = await runPlan({
      plan: makePlan(
        proj.dir,
        ids.map((id) => ({ id, params: exec('echo ran >> ../count; echo x > {out}/x', { cwd: '.smke', outputs: ['x'] }) })),
      ),
      bus: c.bus,
      jobs: 3,
    });
    expect(r).toMatchObject({ exitCode: 0, ran: 1, cached: 2 });
    expect(readFileSync(join(proj.dir, 'count'), 'utf8')).toBe('ran\n');
    expect(listEntries(join(proj.dir, '.smke/store'))).toHaveLength(1);
    for (const id of ids) expect(existsSync(join(proj.dir, 'results', id, 'x'))).toBe(true);
    noInternalErrors(c);
  });

  it('the first fails once and succeeds on its retry: the others reuse the result', async () => {
    const script = 'n=$(cat ../count 2>/dev/null | wc -l); echo ran >> ../count; test "$n" -ge 1 && echo ok > {out}/x';
    const c = capture();
    const r = await runPlan({
      plan: makePlan(
        proj.dir,
        ids.map((id) => ({ id, retries: 1, params: exec(script, { cwd: '.smke', outputs: ['x'] }) })),
      ),
      bus: c.bus,
      jobs: 3,
    });
    expect(r).toMatchObject({ exitCode: 0, failed: 0 });
    expect(r.ran + r.cached).toBe(3);
    noInternalErrors(c);
  });

  it('a failing upstream shared by key: dependants of every instance are skipped, none run', async () => {
    const specs = [...ids.map((id) => ({ id, params: exec('exit 5') })), ...ids.map((id) => ({ id: `use_${id}`, params: exec(['cat', ref(id)]) }))];
    const c = capture();
    const r = await runPlan({ plan: makePlan(proj.dir, specs), bus: c.bus, keepGoing: true, jobs: 2 });
    expect(r).toMatchObject({ exitCode: 1, failed: 3, skipped: 3, ran: 0 });
    noInternalErrors(c);
  });
});
