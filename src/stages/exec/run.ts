// Runs an exec stage's program. See ./kind.ts for the parameters.
//
// No shell unless the stage says `shell = true`: an argv array cannot be
// misquoted. The program's stdout and stderr are the worker's, which the
// executor sends to the stage's log. Declared outputs are checked after the
// run: a missing one fails the stage, and nothing is published.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import type { Value } from '../../compiler/plan.js';
import type { StageContext } from '../kind.js';
import { execOutputPaths } from './kind.js';

function substitute(arg: string, out: string): string {
  return arg.split('{out}').join(out);
}

export async function runExec(ctx: StageContext, params: Record<string, Value>): Promise<void> {
  const shell = params.shell === true;
  const raw = params.argv;
  const argv = (Array.isArray(raw) ? raw : [raw]).map((a) => substitute(String(a), ctx.outDir));
  if (argv.length === 0 || argv[0] === '') throw new Error('exec: argv is empty: give the program to run');
  if (shell && argv.length !== 1) {
    throw new Error('exec: with shell = true, argv must be one command string (or an array of one element)');
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries((params.env ?? {}) as Record<string, Value>)) env[k] = substitute(String(v), ctx.outDir);
  const cwd = resolve(ctx.projectDir, typeof params.cwd === 'string' ? params.cwd : '.');
  if (!existsSync(cwd)) throw new Error(`exec: working directory ${cwd} does not exist`);
  // Programs that take GPUs from the environment see only the granted devices.
  if (ctx.resources.gpuIds.length) env.CUDA_VISIBLE_DEVICES = ctx.resources.gpuIds.join(',');

  const [file, ...args] = shell ? ['/bin/sh', '-c', argv[0]!] : argv;
  const result = await execa(file!, args, {
    cwd,
    env: { ...env, SMKE_OUT: ctx.outDir, SMKE_ATTEMPT: String(ctx.attempt), SMKE_SEED: String(ctx.seed) },
    stdin: 'ignore',
    // execa accepts a descriptor at run time; its types admit only literal numbers.
    stdout: (ctx.outputFd ?? 'inherit') as 'inherit',
    stderr: (ctx.outputFd ?? 'inherit') as 'inherit',
    reject: false,
    cancelSignal: ctx.signal,
    // Not execa's exit hook: cancelling goes through ctx.signal, and the executor
    // kills the worker's process group. The hook (re)installs a dozen signal
    // handlers per program started, ~10 ms per stage in a pooled worker.
    cleanup: false,
    forceKillAfterDelay: 5000,
  });
  if (result.isCanceled) throw new Error('exec: cancelled');
  if (result.failed) {
    if (result.signal) throw new Error(`exec: ${file} was killed by ${result.signal}`);
    if (result.exitCode === undefined) throw new Error(`exec: could not run ${file}: ${result.shortMessage ?? result.message}`);
    throw new Error(`exec: ${file} exited with code ${result.exitCode}`);
  }
  const missing = Object.values(execOutputPaths(params.outputs)).filter((p) => !existsSync(join(ctx.outDir, p)));
  if (missing.length) throw new Error(`exec: declared output(s) not created in {out}: ${missing.join(', ')}`);
}
