// Which processes the stray scan looks at (./strays.ts): only pids the kernel
// can have handed out since the stage started, or every process when that
// cannot be known. Finding and killing strays is tested end to end in
// test/adversarial/runtime-stray-processes.test.ts.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createdSince, procMark } from '../../src/runtime/strays.js';

const lastPid = (): number => Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
const canRead = (() => {
  try {
    return lastPid() > 0;
  } catch {
    return false;
  }
})();

describe.runIf(canRead)('stray scan candidates', () => {
  it('a process started after the mark is a candidate; this one, older, is not', async () => {
    const mark = procMark();
    expect(mark.lastPid).toBeGreaterThan(0);
    const child = spawn('sleep', ['5'], { stdio: 'ignore' });
    try {
      await new Promise((res) => child.once('spawn', res));
      const range = createdSince(mark, lastPid());
      expect(range).toBeDefined();
      expect(range!.has(child.pid!)).toBe(true);
      expect([...range!.pids()]).toContain(child.pid!);
      expect(range!.has(process.pid)).toBe(false);
      expect(range!.has(mark.lastPid!)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('follows the pid counter round its wrap', () => {
    const mark = { ...procMark(), lastPid: 32000, tasks: 1 };
    const range = createdSince(mark, 500)!;
    expect([32001, 32767, 300, 500].map((p) => range.has(p))).toEqual([true, true, true, true]);
    expect([32000, 501, 10000].map((p) => range.has(p))).toEqual([false, false, false]);
  });

  it('lists exactly the pids it holds, across the wrap too', () => {
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const plain = createdSince({ ...procMark(), lastPid: 1000, tasks: 1 }, 1004)!;
    expect([...plain.pids()]).toEqual([1001, 1002, 1003, 1004]);
    expect(plain.size).toBe(4);
    expect(createdSince({ ...procMark(), lastPid: 1000, tasks: 1 }, 1000)!.size).toBe(0);
    const wrapped = createdSince({ ...procMark(), lastPid: pidMax - 3, tasks: 1 }, 302)!;
    const listed = [...wrapped.pids()];
    // Every pid the kernel can have handed out after wrapping (it restarts at 300) is listed, none twice.
    expect(listed.slice(0, 2)).toEqual([pidMax - 2, pidMax - 1]);
    expect(listed).toEqual(expect.arrayContaining([300, 301, 302]));
    expect(new Set(listed).size).toBe(listed.length);
    expect(listed.every((p) => wrapped.has(p))).toBe(true);
    expect(wrapped.size).toBeGreaterThanOrEqual(listed.length);
  });

  it('looks at every process when the range cannot be trusted', () => {
    const mark = procMark();
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    // Nothing known about the start, or the end.
    expect(createdSince(undefined, lastPid())).toBeUndefined();
    expect(createdSince({ ticks: mark.ticks }, lastPid())).toBeUndefined();
    expect(createdSince(mark, undefined)).toBeUndefined();
    // So many processes alive or created since that the counter may have gone all the way round.
    expect(createdSince({ ...mark, tasks: pidMax }, lastPid())).toBeUndefined();
    expect(createdSince({ ...mark, forks: mark.forks! - pidMax }, lastPid())).toBeUndefined();
  });
});

// Probing /proc/<n> directly finds threads as well as processes (their ids come
// from the same counter), and kill() of a thread id kills its whole process: the
// scan must treat a thread as its process. Run in a process of its own (dist/,
// built before the tests), which leads its group like a worker and works in the
// output directory, so that its own threads match every test the scan makes.
describe.runIf(canRead)('stray scan and threads', () => {
  const script = (body: string, reapOptions: string): string => `
    import { Worker } from 'node:worker_threads';
    import { spawn } from 'node:child_process';
    import { procMark, reapStrays } from './dist/runtime/strays.js';
    const out = process.argv[1];
    const mark = procMark();
    process.chdir(out);
    ${body}
    const found = await reapStrays(out, [], ${reapOptions});
    console.log(JSON.stringify(found.map((f) => f.why)));
    process.exit(0);`;
  const runScript = async (
    body: string,
    reapOptions = '{ startedAt: mark }',
  ): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> => {
    const out = mkdtempSync(join(tmpdir(), 'smke-strays-threads-'));
    try {
      // detached: the script leads its own process group, as a worker does.
      const p = spawn(process.execPath, ['--input-type=module', '-e', script(body, reapOptions), out], {
        cwd: new URL('../..', import.meta.url).pathname,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const [status, signal] = await new Promise<[number | null, string | null]>((res) => p.once('close', (c, sig) => res([c, sig])));
      return { status, signal, stdout, stderr };
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  };

  it('threads the scanning process started during the stage are not strays (they used to get it killed)', async () => {
    const r = await runScript(`
      const workers = [0, 1, 2].map(() => new Worker('setInterval(() => {}, 1000)', { eval: true }));
      await Promise.all(workers.map((w) => new Promise((res) => w.once('online', res))));
      await import('node:fs').then((fs) => new Promise((res) => fs.readFile('/proc/self/stat', res)));`);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('a stray process with threads of its own is found once, by its pid, and killed', async () => {
    const r = await runScript(`
      const child = spawn(process.execPath, ['-e', "const { Worker } = require('node:worker_threads'); for (let i = 0; i < 3; i++) new Worker('setInterval(() => {}, 1000)', { eval: true }); setInterval(() => {}, 1000); setTimeout(() => console.log('up'), 300)"], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((res) => child.stdout.once('data', res));
      child.unref();`);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(['in the stage’s process group']);
  });

  it('a process of the worker the caller spares (the program starter) is left alone, with the range and without it', async () => {
    const starter = `const starter = spawn('sleep', ['30'], { stdio: 'ignore' }); await new Promise((res) => starter.once('spawn', res));`;
    for (const range of ['startedAt: mark, ', '']) {
      const spared = await runScript(`${starter} const spare = starter.pid;`, `{ ${range}spare }`);
      expect(spared.status, spared.stderr).toBe(0);
      expect(JSON.parse(spared.stdout)).toEqual([]);
      // The same process, not spared, is a stray of the stage.
      const found = await runScript(`${starter} starter.unref();`, `{ ${range} }`);
      expect(found.status, found.stderr).toBe(0);
      expect(JSON.parse(found.stdout)).toEqual(['in the stage’s process group']);
    }
  });
});
