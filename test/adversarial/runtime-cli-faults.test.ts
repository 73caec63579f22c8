// Faults that used to end in a stack trace (exit 70) or a silent hang: a
// reader that closes the pipe, files of the project or the store replaced by
// something else, job files gone or damaged. Each gets a message and a way out.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempProject } from '../runtime/helpers.js';

const bin = new URL('../../bin/smke.js', import.meta.url).pathname;
let proj: { dir: string; cleanup: () => void };
beforeEach(() => {
  proj = tempProject('smke-adv-cli-');
});
afterEach(() => proj.cleanup());

function smke(args: string[], timeout = 60_000) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: proj.dir, encoding: 'utf8', timeout, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr, timedOut: r.error !== undefined };
}

function clean(r: { code: number | null; err: string; timedOut?: boolean }): void {
  expect(r.timedOut).toBeFalsy();
  expect(r.code).not.toBe(70);
  expect(r.err).not.toMatch(/internal error|Unhandled 'error' event|\n\s+at .+:\d+:\d+/);
}

const PIPELINE = `smke 1
stage a = exec {
  argv = ["sh", "-c", "echo a > {out}/a.txt"]
  outputs = { text = "a.txt" }
}
stage b = exec {
  argv = ["sh", "-c", "tr a-z A-Z < \\"$1\\" > {out}/b.txt", "b", a.text]
  outputs = ["b.txt"]
}
`;

/** Run `smke args` with stdout closed by the reader before anything is written. */
function closedPipe(args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: proj.dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('close', (code) => res({ code, err }));
  });
}

describe('a reader that closes the pipe (smke X | head)', () => {
  const commands = [
    ['kinds'],
    ['kinds', 'exec'],
    ['--help'],
    ['check', 'p.smke'],
    ['dag', 'p.smke'],
    ['status', 'p.smke'],
    ['history'],
    ['explain', 'p.smke', 'b'],
    ['run', 'p.smke', '--json'],
    ['gc', '-n'],
  ];
  it(`no EPIPE stack from any of: ${commands.map((c) => c[0]).join(', ')}`, async () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    for (const args of commands) {
      const r = await closedPipe(args);
      expect(r.err, args.join(' ')).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
      expect(r.code, args.join(' ')).not.toBe(70);
    }
  }, 120_000);
});

describe('project files replaced by something else', { timeout: 120_000 }, () => {
  it('results/ is a file: the run stops before anything runs, saying what to move', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    writeFileSync(join(proj.dir, 'results'), 'my notes\n');
    const r = smke(['run', 'p.smke', '--progress', 'plain']);
    clean(r);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/results is a file, not a directory: .*move it away/);
    expect(readFileSync(join(proj.dir, 'results'), 'utf8')).toBe('my notes\n');
    rmSync(join(proj.dir, 'results'));
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
  });

  it('results/<stage> is a file or a directory of the user: kept, and the stage fails saying why', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    mkdirSync(join(proj.dir, 'results/a'), { recursive: true });
    writeFileSync(join(proj.dir, 'results/a/mine.txt'), 'keep me\n');
    writeFileSync(join(proj.dir, 'results/b'), 'mine too\n');
    const r = smke(['run', 'p.smke', '--progress', 'plain', '-k']);
    clean(r);
    expect(r.code).toBe(1);
    expect(r.out + r.err).toMatch(/results\/a is not a link smke made/);
    expect(readFileSync(join(proj.dir, 'results/a/mine.txt'), 'utf8')).toBe('keep me\n');
    expect(readFileSync(join(proj.dir, 'results/b'), 'utf8')).toBe('mine too\n');
  });

  // logs/: the stage fails saying so (the first worker, started early, writes there too).
  for (const dir of ['tmp', 'locks', 'store', 'logs']) {
    it(`.smke/${dir} is a file: a message naming it, no stack`, () => {
      writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
      mkdirSync(join(proj.dir, '.smke'));
      writeFileSync(join(proj.dir, '.smke', dir), 'x');
      const r = smke(['run', 'p.smke', '--progress', 'plain']);
      clean(r);
      expect(r.code).toBe(1);
      expect(r.out + r.err).toContain(join('.smke', dir));
    });
  }
});

describe('store entries and inputs that are not regular files', { timeout: 120_000 }, () => {
  it('an output replaced by a FIFO: no hang; the entry is corrupt and reruns', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const out = join(proj.dir, 'results/a/a.txt');
    rmSync(out);
    expect(spawnSync('mkfifo', [out]).status).toBe(0);
    const v = smke(['verify'], 20_000);
    clean(v);
    expect(v.out).toMatch(/CORRUPT .*a\.txt is missing or not a regular file/);
    const r = smke(['run', 'p.smke', '--progress', 'plain'], 30_000);
    clean(r);
    expect(r.code).toBe(0);
    expect(readFileSync(join(proj.dir, 'results/a/a.txt'), 'utf8')).toBe('a\n');
  });

  it('a manifest replaced by a FIFO: no hang', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    expect(smke(['run', 'p.smke', '--progress', 'plain']).code).toBe(0);
    const m = join(proj.dir, 'results/b/_smke/manifest.json');
    rmSync(m);
    expect(spawnSync('mkfifo', [m]).status).toBe(0);
    const r = smke(['run', 'p.smke', '--progress', 'plain'], 30_000);
    clean(r);
    expect(r.code).toBe(0);
  });

  for (const [what, make] of [
    ['a FIFO', (p: string) => spawnSync('mkfifo', [p])],
    ['/dev/zero (through a link)', (p: string) => spawnSync('ln', ['-s', '/dev/zero', p])],
  ] as const) {
    it(`an input that is ${what}: a clear error, no hang`, () => {
      make(join(proj.dir, 'in.dat'));
      writeFileSync(
        join(proj.dir, 'p.smke'),
        `smke 1
stage s = exec {
  argv = ["sh", "-c", "echo > {out}/x"]
  inputs = ["in.dat"]
}
`,
      );
      const r = smke(['status', 'p.smke'], 20_000);
      clean(r);
      expect(r.out + r.err).toMatch(/in\.dat \(is not a regular file or a directory/);
    });
  }
});

describe('job files', { timeout: 120_000 }, () => {
  for (const [what, content] of [
    ['missing', undefined],
    ['empty', ''],
    ['garbage', '{"format": 1, "key": '],
    ['another format', '{"format": 9}'],
  ] as const) {
    it(`${what}: the worker fails with a message, not a stack`, () => {
      const job = join(proj.dir, 'x.job.json');
      if (content !== undefined) writeFileSync(job, content);
      const r = smke(['worker', job]);
      clean(r);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/job file .*x\.job\.json/);
    });
  }

  it('a job file deleted while the attempt waits to start: the attempt fails clearly, the run goes on', () => {
    writeFileSync(join(proj.dir, 'p.smke'), PIPELINE);
    // The stage deletes its own job file (as a user cleaning .smke/tmp would): the worker has read it already.
    writeFileSync(
      join(proj.dir, 'p.smke'),
      PIPELINE.replace('echo a > {out}/a.txt', 'rm -f ../.smke/tmp/*.job.json .smke/tmp/*.job.json; echo a > {out}/a.txt'),
    );
    const r = smke(['run', 'p.smke', '--progress', 'plain']);
    clean(r);
    expect(r.code).toBe(0);
    expect(readdirSync(join(proj.dir, '.smke/tmp'))).toEqual([]);
    expect(existsSync(join(proj.dir, 'results/b/b.txt'))).toBe(true);
  });
});
