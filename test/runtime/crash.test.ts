// SIGKILL of the orchestrator at random moments, then a rerun: the store must
// be consistent and finished work must not be redone. Workers run in their own
// process groups and outlive a killed orchestrator; the rerun waits for them
// (their locks are live) and reuses what they publish.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, realpathSync, existsSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Digester } from '../../src/runtime/digest.js';
import { checkEntry, listEntries } from '../../src/runtime/store.js';
import { tempProject } from './helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
const TRIALS = 20;

const stage = (name: string, deps: string[]) => `
stage ${name} = exec {
  argv = ["sh", "-c", "echo ${name} >> ran.log; cat \\"$@\\" /dev/null > {out}/${name}.txt; echo ${name} >> {out}/${name}.txt", "${name}"${deps.map((d) => `, ${d}.${d}`).join('')}]
  outputs = { ${name} = "${name}.txt" }
}`;
const PIPELINE = `smke 1${stage('a', [])}${stage('b', [])}${stage('c', ['a', 'b'])}${stage('d', ['c'])}\n`;

let proj: { dir: string; cleanup: () => void };
beforeAll(() => {
  proj = tempProject('smke-crash-');
});
afterAll(() => proj.cleanup());

describe('SIGKILL of the orchestrator', () => {
  it(`leaves a store the next run trusts, and nothing finished is redone (${TRIALS} trials)`, async () => {
    const delays: number[] = [];
    const dir = proj.dir;
    writeFileSync(join(dir, 'p.smke'), PIPELINE);
    // Compile into the plan cache first, so the kills land in the runtime, not in the compiler.
    spawnSync(process.execPath, [bin, 'run', 'p.smke', '--dry-run'], { cwd: dir });
    for (let t = 0; t < TRIALS; t++) {
      // A fresh store for each trial; the state DB and plan cache carry over, as they would for a user.
      rmSync(join(dir, '.smke/store'), { recursive: true, force: true });
      rmSync(join(dir, 'ran.log'), { force: true });
      const delay = Math.floor(50 + Math.random() * 1200);
      delays.push(delay);
      const child = spawn(process.execPath, [bin, 'run', 'p.smke', '-j', '2', '--progress', 'plain'], { cwd: dir, stdio: 'ignore' });
      const exited = new Promise((res) => child.on('exit', res));
      await new Promise((res) => setTimeout(res, delay));
      child.kill('SIGKILL');
      await exited;

      const rerun = spawnSync(process.execPath, [bin, 'run', 'p.smke', '--progress', 'plain'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      // On failure, show the failed attempts' logs too.
      const logs = rerun.status === 0 ? '' : spawnSync('sh', ['-c', 'tail -n 20 .smke/logs/*/*.log'], { cwd: dir, encoding: 'utf8' }).stdout;
      const ctx = `trial ${t}, killed after ${delay} ms:\n${rerun.stdout}${rerun.stderr}${logs}`;
      expect(rerun.status, ctx).toBe(0);
      // Every stage ran exactly once over the killed run and the rerun.
      const ran = readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n').sort();
      expect(ran, ctx).toEqual(['a', 'b', 'c', 'd']);
      // Every store entry is complete and matches its manifest; nothing is left in flight.
      const store = join(dir, '.smke/store');
      const digester = await Digester.create();
      const keys = listEntries(store);
      expect(keys, ctx).toHaveLength(4);
      for (const k of keys) expect(checkEntry(join(store, k), k, digester).state, ctx).toBe('ok');
      expect([...readdirSync(join(dir, '.smke/tmp')), ...readdirSync(join(dir, '.smke/locks'))], ctx).toEqual([]);
      expect(readFileSync(join(dir, 'results/d/d.txt'), 'utf8'), ctx).toBe('a\nb\nc\nd\n');
      expect(existsSync(realpathSync(join(dir, 'results/a')))).toBe(true);
      // A third run has nothing to do.
      const third = spawnSync(process.execPath, [bin, 'run', 'p.smke', '--progress', 'plain'], { cwd: dir, encoding: 'utf8' });
      expect(third.stdout, ctx).toMatch(/smke: 0 ran, 4 cached, 0 failed/);
    }
  }, 600_000); // generous: the whole suite shares two cores
});
