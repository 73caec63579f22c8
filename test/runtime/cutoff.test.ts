// Early cutoff: a stage keys on the content of the upstream outputs it reads,
// so an upstream that reruns and writes the same bytes leaves it cached, and
// one whose output differs (changed input, a nondeterministic rerun after gc,
// a tampered entry rebuilt) reruns it.
import { chmodSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { StateDb } from '../../src/runtime/state.js';
import { capture, exec, makePlan, ref, tempProject } from './helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-cutoff-');
  writeFileSync(join(proj.dir, 'in.txt'), 'hello\n');
});
afterEach(() => proj.cleanup());

/** prep upper-cases in.txt (or, `noisy`, writes something new each run); use and last count their runs. */
const plan = (prep = 'tr a-z A-Z < in.txt > {out}/up.txt') =>
  makePlan(proj.dir, [
    { id: 'prep', params: exec(['sh', '-c', prep], { inputs: ['in.txt'], outputs: ['up.txt'] }) },
    { id: 'use', params: exec(['sh', '-c', 'echo use >> ran.log; cat "$0" "$0" > {out}/twice.txt', ref('prep', 'up')], { outputs: ['twice.txt'] }) },
    { id: 'last', params: exec(['sh', '-c', 'echo last >> ran.log; wc -l < "$0" > {out}/n.txt', ref('use', 'twice')], { outputs: ['n.txt'] }) },
  ]);
const NOISY = 'cat in.txt /proc/sys/kernel/random/uuid > {out}/up.txt';
const ran = (): string[] => readFileSync(join(proj.dir, 'ran.log'), 'utf8').trim().split('\n');
const entryOf = (stage: string): string => join(proj.dir, 'results', stage);

describe('early cutoff', () => {
  it('an upstream rerun with identical output leaves its dependants cached, and says so', async () => {
    expect(await runPlan({ plan: plan(), bus: capture().bus })).toMatchObject({ exitCode: 0, ran: 3 });
    // A different input, the same upper-cased output.
    writeFileSync(join(proj.dir, 'in.txt'), 'HELLO\n');
    const dry = capture();
    await runPlan({ plan: plan(), bus: dry.bus, dryRun: true });
    // Before prep runs nobody can know: the plan says what could spare them.
    expect(dry.of('planned').map((e) => [e.instance, e.action, e.reasons])).toEqual([
      ['prep', 'run', ['input in.txt changed']],
      ['use', 'run', ['upstream prep changed (cut off if its output is unchanged)']],
      ['last', 'run', ['upstream use reruns (cut off if its output is unchanged)']],
    ]);
    const c = capture();
    const r = await runPlan({ plan: plan(), bus: c.bus });
    expect(r).toMatchObject({ exitCode: 0, ran: 1, cached: 2 });
    expect(ran()).toEqual(['use', 'last']);
    expect(c.of('cached').map((e) => [e.instance, e.cutoff])).toEqual([
      ['use', 'upstream prep reran, output unchanged: cut off'],
      ['last', 'upstream use unchanged: cut off'],
    ]);
    // History keeps the reason; the next run and status find everything cached.
    const db = new StateDb(join(proj.dir, '.smke/state.db'));
    expect(db.attemptsOfRun(2).map((a) => [a.instance, a.status, a.reason])).toEqual([
      ['prep', 'succeeded', 'input in.txt changed'],
      ['use', 'cut off', 'upstream prep reran, output unchanged: cut off'],
      ['last', 'cut off', 'upstream use unchanged: cut off'],
    ]);
    db.close();
    const again = capture();
    expect(await runPlan({ plan: plan(), bus: again.bus })).toMatchObject({ ran: 0, cached: 3 });
    expect(readFileSync(join(entryOf('last'), 'n.txt'), 'utf8').trim()).toBe('2');
  });

  it('a changed upstream output reruns the dependants that read it', async () => {
    await runPlan({ plan: plan(), bus: capture().bus });
    writeFileSync(join(proj.dir, 'in.txt'), 'bye\n');
    const r = await runPlan({ plan: plan(), bus: capture().bus });
    expect(r).toMatchObject({ exitCode: 0, ran: 3, cached: 0 });
    expect(ran()).toEqual(['use', 'last', 'use', 'last']);
    expect(readFileSync(join(entryOf('use'), 'twice.txt'), 'utf8')).toBe('BYE\nBYE\n');
  });

  it('a forced upstream with the same output does not force its dependants', async () => {
    await runPlan({ plan: plan(), bus: capture().bus });
    const r = await runPlan({ plan: plan(), bus: capture().bus, force: ['prep'] });
    expect(r).toMatchObject({ exitCode: 0, ran: 1, cached: 2 });
    expect(ran()).toEqual(['use', 'last']);
  });

  it('an upstream re-published with other bytes (gc, nondeterministic rerun) reruns its consumers', async () => {
    await runPlan({ plan: plan(NOISY), bus: capture().bus });
    const before = readFileSync(join(entryOf('use'), 'twice.txt'), 'utf8');
    // gc took prep's entry: prep reruns and writes something else.
    rmSync(
      readdirSync(join(proj.dir, '.smke/store'))
        .map((k) => join(proj.dir, '.smke/store', k))
        .find((p) => readFileSync(join(p, '_smke/manifest.json'), 'utf8').includes('"instance": "prep"'))!,
      { recursive: true, force: true },
    );
    const r = await runPlan({ plan: plan(NOISY), bus: capture().bus });
    expect(r).toMatchObject({ exitCode: 0, ran: 3 });
    expect(readFileSync(join(entryOf('use'), 'twice.txt'), 'utf8')).not.toBe(before);
    // The consumer reads what the store now holds: prep's new output, twice.
    const up = readFileSync(join(entryOf('prep'), 'up.txt'), 'utf8');
    expect(readFileSync(join(entryOf('use'), 'twice.txt'), 'utf8')).toBe(up + up);
  });

  it('each manifest names the upstream entries it was computed from, in a cold run and in reruns', async () => {
    // Planned keys of pending upstreams change once they run; the record must hold the settled ones.
    // (A cut-off entry keeps naming the entry it was computed from: another key, the same output.)
    const manifestUpstream = (stage: string): unknown =>
      (JSON.parse(readFileSync(join(entryOf(stage), '_smke/manifest.json'), 'utf8')) as { upstream: unknown }).upstream;
    const keyOf = (stage: string): string => basename(realpathSync(entryOf(stage)));
    for (const input of ['hello\n', 'bye\n', 'again\n']) {
      writeFileSync(join(proj.dir, 'in.txt'), input);
      expect(await runPlan({ plan: plan(), bus: capture().bus })).toMatchObject({ exitCode: 0 });
      expect(manifestUpstream('use')).toEqual({ prep: keyOf('prep') });
      expect(manifestUpstream('last')).toEqual({ use: keyOf('use') });
    }
  });

  for (const [what, prep, consumersRerun] of [
    ['a deterministic', undefined, false],
    ['a nondeterministic', NOISY, true],
  ] as const) {
    it(`a tampered entry of ${what} upstream is rebuilt; its consumers ${consumersRerun ? 'rerun' : 'are cut off'}`, async () => {
      await runPlan({ plan: plan(prep), bus: capture().bus });
      const f = join(entryOf('prep'), 'up.txt');
      const good = readFileSync(f, 'utf8');
      chmodSync(entryOf('prep') + '/', 0o755);
      chmodSync(f, 0o644);
      writeFileSync(f, 'TAMPERED\n');
      const c = capture();
      const r = await runPlan({ plan: plan(prep), bus: c.bus });
      expect(r).toMatchObject({ exitCode: 0, ran: consumersRerun ? 3 : 1 });
      expect(c.of('planned')[0]!.reasons[0]).toMatch(/store entry corrupted/);
      const up = readFileSync(join(entryOf('prep'), 'up.txt'), 'utf8');
      expect(up).not.toBe('TAMPERED\n');
      if (!consumersRerun) expect(up).toBe(good);
      // Never computed from the tampered bytes.
      expect(readFileSync(join(entryOf('use'), 'twice.txt'), 'utf8')).toBe(up + up);
    });
  }
});
