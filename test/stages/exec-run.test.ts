// How the exec kind starts a program and reads its end (src/stages/exec/exec-run.ts),
// called directly with a stage context: exit codes, signals, a program that
// cannot be started, cancellation (SIGTERM, then SIGKILL for a program that
// ignores it), the environment it gets, and where its output goes.
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StageContext } from '../../src/stages/stage-kind.js';
import type { ExecParams } from '../../src/stages/exec/exec.js';
import { runExec } from '../../src/stages/exec/exec-run.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smke-exec-run-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function context(signal = new AbortController().signal, outputFd?: number): StageContext {
  const quiet = (): void => undefined;
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
  };
}

const params = (argv: string | string[], more: Partial<ExecParams> = {}): ExecParams =>
  ({ argv, shell: typeof argv === 'string', inputs: [], outputs: [], env: {}, cwd: '.', ...more }) as ExecParams;

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
