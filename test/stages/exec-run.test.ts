// How the exec kind starts a program and reads its end (src/stages/exec/exec-run.ts),
// called directly with a stage context: exit codes, signals, a program that
// cannot be started, cancellation (SIGTERM, then SIGKILL for a program that
// ignores it), the environment it gets, and where its output goes. Every case
// runs twice: programs started by Node (a worker of its own, or no starter
// built), and by the program starter a pooled worker offers
// (src/runtime/program-starter.ts; built by `npm run build`).
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StageContext } from '../../src/stages/stage-kind.js';
import type { ExecParams } from '../../src/stages/exec/exec.js';
import { runExec } from '../../src/stages/exec/exec-run.js';
import { ProgramStarter, STARTER_PATH } from '../../src/runtime/program-starter.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smke-exec-run-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

if (!existsSync(STARTER_PATH)) throw new Error(`${STARTER_PATH} is missing: run npm run build (it needs a C compiler)`);
const starter = new ProgramStarter();
afterAll(() => starter.close());

/** How the stage's programs are started in this pass. */
let mode: 'node' | 'starter' = 'node';

function context(signal = new AbortController().signal, outputFd?: number): StageContext {
  const quiet = (): void => undefined;
  // The starter appends to the log by path: the file behind the descriptor, or a log of its own.
  const logPath = outputFd === undefined ? join(dir, 'starter.log') : readlinkSync(`/proc/self/fd/${outputFd}`);
  return {
    instance: 'x',
    stage: 'x',
    key: 'k',
    outDir: dir,
    scratchDir: dir,
    projectDir: dir,
    attempt: 2,
    seed: 7,
    resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
    log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    progress: quiet,
    metric: quiet,
    signal,
    outputFd,
    ...(mode === 'starter' && { startProgram: (spec) => starter.start(spec, logPath) }),
  };
}

const params = (argv: string | string[], more: Partial<ExecParams> = {}): ExecParams =>
  ({ argv, shell: typeof argv === 'string', inputs: [], outputs: [], env: {}, cwd: '.', ...more }) as ExecParams;

describe.each(['node', 'starter'] as const)('started by %s', (how) => {
  beforeEach(() => {
    mode = how;
  });

  describe('exec: how a program ends', () => {
    it('a zero exit succeeds; any other code fails with that code', async () => {
      await expect(runExec(context(), params('exit 0'))).resolves.toBeUndefined();
      for (const code of [1, 3, 127]) await expect(runExec(context(), params(`exit ${code}`))).rejects.toThrow(`exec: /bin/sh exited with code ${code}`);
    });

    it('a program killed by a signal fails naming the signal', async () => {
      await expect(runExec(context(), params('kill -KILL $$'))).rejects.toThrow('exec: /bin/sh was killed by SIGKILL');
      await expect(runExec(context(), params('kill -SEGV $$'))).rejects.toThrow('exec: /bin/sh was killed by SIGSEGV');
    });

    it('a program that cannot be started fails saying so, for a missing file and a non-executable one', async () => {
      await expect(runExec(context(), params([join(dir, 'no-such-program')]))).rejects.toThrow(/exec: could not run .*no-such-program: .*ENOENT/);
      writeFileSync(join(dir, 'not-executable'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
      await expect(runExec(context(), params([join(dir, 'not-executable')]))).rejects.toThrow(/exec: could not run .*not-executable: .*EACCES/);
    });

    it('a cancel stops the program (SIGTERM) and fails the stage as cancelled, also when it came before the start', async () => {
      const c = new AbortController();
      const running = runExec(context(c.signal), params('exec sleep 600'));
      setTimeout(() => c.abort(new Error('cancelled')), 200);
      await expect(running).rejects.toThrow('exec: cancelled');
      const early = new AbortController();
      early.abort(new Error('cancelled'));
      await expect(runExec(context(early.signal), params('exec sleep 600'))).rejects.toThrow('exec: cancelled');
    });

    it('a program that ignores SIGTERM is killed after the grace period', async () => {
      const c = new AbortController();
      const log = openSync(join(dir, 'log'), 'a');
      // The trap is set before the marker file appears: cancel only then. The loop's
      // `sleep 1` outlives the shell by up to a second; its output goes to the log, not the test's.
      const running = runExec(context(c.signal, log), params(`trap '' TERM; touch ${dir}/trapped; while :; do sleep 1; done`));
      while (!existsSync(join(dir, 'trapped'))) await new Promise((r) => setTimeout(r, 20));
      const t0 = Date.now();
      c.abort(new Error('cancelled'));
      await expect(running).rejects.toThrow('exec: cancelled');
      closeSync(log);
      // Not a timing assertion on the machine's speed: SIGKILL comes only after the grace period.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
    }, 20_000);
  });

  describe('exec: what the program gets', () => {
    it('a program named without a path is found in the PATH of its own environment', async () => {
      mkdirSync(join(dir, 'tools'));
      writeFileSync(join(dir, 'tools', 'smke-test-tool'), '#!/bin/sh\necho found > "$SMKE_OUT/tool.txt"\n', { mode: 0o755 });
      await runExec(context(), params(['smke-test-tool'], { env: { PATH: `/nowhere:${join(dir, 'tools')}:/usr/bin:/bin` } }));
      expect(readFileSync(join(dir, 'tool.txt'), 'utf8')).toBe('found\n');
      await expect(runExec(context(), params(['smke-test-tool'], { env: { PATH: '/usr/bin:/bin' } }))).rejects.toThrow(
        /could not run smke-test-tool: .*ENOENT/,
      );
    });

    it('no signal blocked or ignored, whatever the worker blocks or ignores', async () => {
      await runExec(context(), params('grep -E "^Sig(Blk|Ign)" /proc/self/status > {out}/sig.txt'));
      const [blocked, ignored] = [...readFileSync(join(dir, 'sig.txt'), 'utf8').matchAll(/^Sig(?:Blk|Ign):\t([0-9a-f]{16})$/gm)].map((m) =>
        BigInt(`0x${m[1]}`),
      );
      expect(blocked).toBe(0n);
      // posix_spawn (the starter's, as ninja's) leaves glibc's two internal
      // signals (32 and 33, which no program can use through glibc) ignored.
      const glibcInternal = (1n << 31n) | (1n << 32n);
      expect(ignored! & ~glibcInternal).toBe(0n);
      await expect(runExec(context(), params('kill -PIPE $$'))).rejects.toThrow('exec: /bin/sh was killed by SIGPIPE');
    });

    it('an argument holding a NUL byte is refused, not cut short', async () => {
      await expect(runExec(context(), params(['/bin/echo', 'a\0b']))).rejects.toThrow(/null bytes|NUL byte/);
    });

    it('programs started at once each get their own end', async () => {
      const codes = Array.from({ length: 16 }, (_, i) => i % 4);
      const ends = await Promise.allSettled(codes.map((c, i) => runExec(context(), params(`sleep 0.0${i % 3}; exit ${c}`))));
      ends.forEach((e, i) => {
        if (codes[i] === 0) expect(e.status).toBe('fulfilled');
        else expect(e).toMatchObject({ status: 'rejected', reason: { message: `exec: /bin/sh exited with code ${codes[i]}` } });
      });
    });

    it('its env, SMKE_OUT, SMKE_ATTEMPT and SMKE_SEED, and {out} replaced in argv', async () => {
      await runExec(context(), params('echo "$GREETING $SMKE_OUT $SMKE_ATTEMPT $SMKE_SEED" > {out}/env.txt', { env: { GREETING: 'hi {out}' } }));
      expect(readFileSync(join(dir, 'env.txt'), 'utf8')).toBe(`hi ${dir} ${dir} 2 7\n`);
    });

    it('stdout and stderr go to the descriptor a pooled worker gives', async () => {
      const log = join(dir, 'log');
      const fd = openSync(log, 'a');
      try {
        await runExec(context(undefined, fd), params('echo to-out; echo to-err >&2'));
      } finally {
        closeSync(fd);
      }
      expect(readFileSync(log, 'utf8')).toBe('to-out\nto-err\n');
    });

    it('a declared output the program did not create fails the stage', async () => {
      await expect(runExec(context(), params('true', { outputs: ['made.txt'] }))).rejects.toThrow('declared output(s) not created in {out}: made.txt');
    });
  });
});

describe('the program starter', () => {
  it('is used only where it runs: a binary of another machine (or none) leaves programs to Node', async () => {
    const opened = await ProgramStarter.open();
    expect(opened?.pid).toBeGreaterThan(0);
    // Opened means ready to start programs at once.
    expect(await opened!.start({ file: 'true', args: [], cwd: dir, env: { PATH: process.env.PATH } }, join(dir, 'opened.log')).ended).toEqual({
      code: 0,
      signal: null,
    });
    opened!.close();
    const foreign = join(dir, 'spawn-server');
    writeFileSync(foreign, '\x7fELF\x02\x01\x01 not for this machine', { mode: 0o755 });
    expect(await ProgramStarter.open(foreign)).toBeUndefined();
    expect(await ProgramStarter.open(join(dir, 'absent'))).toBeUndefined();
    // A program that runs but is no starter (it never says it is ready) is not taken for one either.
    const impostor = join(dir, 'impostor');
    writeFileSync(impostor, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    expect(await ProgramStarter.open(impostor)).toBeUndefined();
    // Nor is a starter of an older protocol (a dist/native built from older source): it says "R", waits, and is killed.
    const older = join(dir, 'older');
    writeFileSync(older, '#!/bin/sh\necho R\nexec cat > /dev/null\n', { mode: 0o755 });
    expect(await ProgramStarter.open(older)).toBeUndefined();
  });

  it('signals a program by its request: sent with the start, among several running, and never once it has ended', async () => {
    const s = await ProgramStarter.open();
    const spec = (cmd: string) => ({ file: '/bin/sh', args: ['-c', cmd], cwd: dir, env: { PATH: process.env.PATH } });
    const log = join(dir, 'signals.log');
    // The kill is written right behind the start request: the starter has the program by then.
    const first = s!.start(spec('exec sleep 600'), log);
    first.kill('SIGTERM');
    expect(await first.ended).toEqual({ code: null, signal: 'SIGTERM' });
    // Only the one named is signalled.
    const a = s!.start(spec('exec sleep 600'), log);
    const b = s!.start(spec('sleep 0.3; exit 7'), log);
    a.kill('SIGKILL');
    expect(await a.ended).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await b.ended).toEqual({ code: 7, signal: null });
    // Ended and reaped: a later kill is dropped, and the starter goes on starting programs.
    b.kill('SIGKILL');
    expect(await s!.start(spec('exit 0'), log).ended).toEqual({ code: 0, signal: null });
    s!.close();
  });

  it('a starter that dies fails the programs it had in hand, clearly; the next program gets a new one', async () => {
    mode = 'starter';
    const running = runExec(context(), params(`touch ${dir}/running; exec sleep 600`));
    while (!existsSync(join(dir, 'running'))) await new Promise((r) => setTimeout(r, 20));
    const first = starter.pid!;
    process.kill(first, 'SIGKILL');
    await expect(running).rejects.toThrow(/exec: could not run \/bin\/sh: the program starter .* was killed by SIGKILL/);
    await runExec(context(), params('echo again > {out}/again.txt'));
    expect(readFileSync(join(dir, 'again.txt'), 'utf8')).toBe('again\n');
    expect(starter.pid).not.toBe(first);
  });
});
