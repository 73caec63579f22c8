// An edit that keeps the size and restores the mtime (touch -d, utimes, a
// tool that preserves times) must be seen by the next run, not only by
// `smke verify`: ctime, which no user can restore, is part of every stat
// signature (stat cache, store entries, the no-op snapshot).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPlan } from '../../src/runtime/load-plan.js';
import { runPlan } from '../../src/runtime/orchestrate.js';
import { signature } from '../../src/runtime/signature.js';
import { capture, exec, makePlan, tempProject } from '../runtime/helpers.js';

let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-adv-sig-');
});
afterEach(() => proj.cleanup());

const old = (p: string, s = 120): void => {
  const t = new Date(Date.now() - s * 1000);
  utimesSync(p, t, t);
};

/** Rewrite `p` with same-size content and put its mtime back to the nanosecond (`touch -r`, as a user would). */
function sneakyEdit(p: string, content: string): void {
  const st = statSync(p, { bigint: true });
  expect(BigInt(Buffer.byteLength(content))).toBe(st.size);
  const ref = join(proj.dir, '.times-ref');
  expect(spawnSync('touch', ['-r', p, ref]).status).toBe(0);
  writeFileSync(p, content);
  expect(spawnSync('touch', ['-r', ref, p]).status).toBe(0);
  rmSync(ref);
  expect(statSync(p, { bigint: true }).mtimeNs).toBe(st.mtimeNs);
}

async function run(specs: Parameters<typeof makePlan>[1], viaCache = false) {
  const c = capture();
  const plan = makePlan(proj.dir, specs);
  let p = plan;
  if (viaCache) {
    plan.sources = [{ path: join(proj.dir, 'p.smke'), sha256: '' }];
    p = (await loadPlan({ file: join(proj.dir, 'p.smke'), projectDir: proj.dir, compile: async () => ({ plan, exitCode: 0 }) })).plan!;
  }
  const r = await runPlan({ plan: p, bus: c.bus });
  return { ...r, reasons: c.of('planned').map((e) => e.reasons.join('; ')) };
}

describe('same size, mtime restored', () => {
  it('a declared input file: the next run reruns the stage', async () => {
    writeFileSync(join(proj.dir, 'in.txt'), 'aaaa\n');
    old(join(proj.dir, 'in.txt'));
    const specs = [{ id: 's', params: exec('cat in.txt > {out}/o', { inputs: ['in.txt'], outputs: ['o'] }) }];
    expect(await run(specs)).toMatchObject({ ran: 1 });
    expect(await run(specs)).toMatchObject({ ran: 0 });
    sneakyEdit(join(proj.dir, 'in.txt'), 'bbbb\n');
    expect(await run(specs)).toMatchObject({ ran: 1, reasons: ['input in.txt changed'] });
    expect(readFileSync(join(proj.dir, 'results/s/o'), 'utf8')).toBe('bbbb\n');
  });

  it('an input through the no-op fast path: the snapshot does not answer', async () => {
    writeFileSync(join(proj.dir, 'p.smke'), 'smke 1\n');
    writeFileSync(join(proj.dir, 'in.txt'), 'aaaa\n');
    old(join(proj.dir, 'in.txt'));
    const specs = [{ id: 's', params: exec('cat in.txt > {out}/o', { inputs: ['in.txt'], outputs: ['o'] }) }];
    expect(await run(specs, true)).toMatchObject({ ran: 1 });
    expect(await run(specs, true)).toMatchObject({ ran: 0 });
    sneakyEdit(join(proj.dir, 'in.txt'), 'cccc\n');
    expect(await run(specs, true)).toMatchObject({ ran: 1, reasons: ['input in.txt changed'] });
  });

  it('a file inside a directory input, the directory mtime restored too', async () => {
    mkdirSync(join(proj.dir, 'data'));
    writeFileSync(join(proj.dir, 'data/x'), 'xxxx\n');
    old(join(proj.dir, 'data/x'));
    old(join(proj.dir, 'data'));
    const specs = [{ id: 's', params: exec('cat data/x > {out}/o', { inputs: ['data'], outputs: ['o'] }) }];
    expect(await run(specs)).toMatchObject({ ran: 1 });
    const dirSt = statSync(join(proj.dir, 'data'));
    sneakyEdit(join(proj.dir, 'data/x'), 'yyyy\n');
    utimesSync(join(proj.dir, 'data'), dirSt.atime, dirSt.mtime); // the ms value old() gave it
    expect(await run(specs)).toMatchObject({ ran: 1 });
    expect(readFileSync(join(proj.dir, 'results/s/o'), 'utf8')).toBe('yyyy\n');
  });

  it('a file of a published store entry: never used, rerun', async () => {
    const specs = [{ id: 's', params: exec('echo good > {out}/o', { outputs: ['o'] }) }];
    expect(await run(specs)).toMatchObject({ ran: 1 });
    expect(await run(specs)).toMatchObject({ ran: 0 });
    sneakyEdit(join(proj.dir, 'results/s/o'), 'evil\n');
    expect(await run(specs)).toMatchObject({ ran: 1, reasons: [expect.stringMatching(/does not match its digest/)] });
    expect(readFileSync(join(proj.dir, 'results/s/o'), 'utf8')).toBe('good\n');
  });

  it('signature(): a chmod or a restored mtime changes it; a read does not', async () => {
    const p = join(proj.dir, 'f');
    writeFileSync(p, 'z');
    old(p);
    const s0 = signature(statSync(p, { bigint: true }));
    // Past the kernel's timestamp granularity (a few ms), so the change cannot share old()'s tick.
    await new Promise((res) => setTimeout(res, 30));
    readFileSync(p);
    expect(signature(statSync(p, { bigint: true }))).toBe(s0);
    const st = statSync(p);
    chmodSync(p, 0o600);
    utimesSync(p, st.atime, st.mtime);
    expect(signature(statSync(p, { bigint: true }))).not.toBe(s0);
  });
});
