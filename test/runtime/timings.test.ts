// `smke history` splits each attempt's time into the stage's own and smke's overhead.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { StateDb } from '../../src/runtime/state.js';
import { attemptTime, runTimes } from '../../src/runtime/timings.js';
import { capture, exec, makePlan, tempProject } from './helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-timings-');
});
afterEach(() => proj.cleanup());

describe('time per stage and overhead', () => {
  it('are recorded for each attempt and summed per run', async () => {
    const plan = makePlan(proj.dir, [
      { id: 'slow', params: exec('sleep 0.4; echo > {out}/x') },
      { id: 'bad', params: exec('exit 2') },
    ]);
    await runPlan({ plan, bus: capture().bus, keepGoing: true });
    const db = new StateDb(join(proj.dir, '.smke/state.db'));
    const attempts = db.attemptsOfRun(1);
    db.close();
    const times = attempts.map((t) => attemptTime(t, join(proj.dir, '.smke/store')));
    const slow = times[attempts.findIndex((a) => a.instance === 'slow')]!;
    expect(slow.stageSeconds).toBeGreaterThanOrEqual(0.4);
    expect(slow.seconds).toBeGreaterThanOrEqual(slow.stageSeconds!);
    expect(slow.overheadSeconds).toBeCloseTo(slow.seconds! - slow.stageSeconds!, 6);
    // A failed attempt has a wall time but no stage time (nothing was published).
    const bad = times[attempts.findIndex((a) => a.instance === 'bad')]!;
    expect(bad.seconds).toBeGreaterThan(0);
    expect(bad.stageSeconds).toBeUndefined();
    expect(runTimes(times)).toEqual({ stageSeconds: slow.stageSeconds, overheadSeconds: slow.overheadSeconds });

    const h = spawnSync(process.execPath, [bin, 'history'], { cwd: proj.dir, encoding: 'utf8' });
    expect(h.status, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/\(stages \d+\.\d+s, smke overhead \d+\.\d+s\)/);
    expect(h.stdout).toMatch(/slow#1 {2}succeeded {2}\d+\.\d+s = stage \d+\.\d+s \+ overhead \d+\.\d+s/);
    const json = spawnSync(process.execPath, [bin, 'history', '--json'], { cwd: proj.dir, encoding: 'utf8' });
    const run = JSON.parse(json.stdout.trim().split('\n')[0]!) as { attempts: { instance: string; stageSeconds?: number }[] };
    expect(run.attempts.find((a) => a.instance === 'slow')!.stageSeconds).toBe(slow.stageSeconds);
  });
});
