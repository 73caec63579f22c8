// Runs an exec stage's program. See ./exec.ts for the parameters.
//
// No shell unless the stage says `shell = true`: an argv array cannot be
// misquoted. The program's stdout and stderr are the worker's, which the
// executor sends to the stage's log (through a filter hiding the values of
// secret_env, when the stage has any). Declared outputs are checked after the
// run: a missing one fails the stage, and nothing is published.

import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { addAbortListener } from 'node:events';
import type { ProgramEnd, StageContext, StartedProgram } from '../stage-kind.js';
import { execOutputPaths, type ExecParams } from './exec.js';
import { redactor } from './redact.js';

/** Names that usually hold credentials (HF_TOKEN, WANDB_API_KEY, AWS_SECRET_ACCESS_KEY, DB_PASSWORD). */
const CREDENTIAL = /(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|(ACCESS|SECRET|PRIVATE)_?(ACCESS_)?KEY|CREDENTIALS?)$/i;

function substitute(arg: string, out: string): string {
  return arg.split('{out}').join(out);
}

/** The values of `secret_env`, from this process's environment (the executor passed exactly these). */
function secretValues(params: ExecParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of params.secret_env ?? []) {
    const v = process.env[n];
    if (v === undefined) throw new Error(`exec: secret_env names ${n}, which is not set in smke's environment: export it before smke run`);
    out[n] = v;
  }
  return out;
}

/** Copy the program's stdout and stderr to ours with the secrets hidden; resolves when each is fully written. */
function redacted(sub: ChildProcess, values: string[], outputFd?: number): Promise<void>[] {
  // A background child that inherited the pipes would keep them open (and the
  // stage running) for as long as it lives: once the program itself has
  // exited, its output gets a moment to arrive, then the pipes are closed.
  sub.once('exit', () => {
    setTimeout(() => {
      sub.stdout?.destroy();
      sub.stderr?.destroy();
    }, PIPE_GRACE_MS).unref();
  });
  // A pooled worker gives each job its log as a descriptor; a worker of its own writes to its stdout and stderr.
  const log = outputFd === undefined ? undefined : createWriteStream('', { fd: outputFd, autoClose: false });
  return (
    [
      [sub.stdout, log ?? process.stdout],
      [sub.stderr, log ?? process.stderr],
    ] as const
  ).map(([from, to]) => {
    if (!from) return Promise.resolve();
    const t = redactor(values);
    from.pipe(t).pipe(to, { end: false });
    from.once('close', () => {
      if (!t.writableEnded) t.end();
    });
    return new Promise<void>((res) => t.once('end', () => res()));
  });
}

const PIPE_GRACE_MS = 1000;
/** How long a cancelled program has between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 5000;

/** A program started with node:child_process, in the shape of ctx.startProgram's. */
function nodeProgram(sub: ChildProcess): StartedProgram {
  return {
    ended: new Promise((res) => {
      // 'error' without 'exit' when the program could not be started (ENOENT, EACCES).
      sub.once('error', (error) => res({ error }));
      sub.once('exit', (code, signal) => res({ code, signal }));
    }),
    kill: (signal) => sub.kill(signal),
  };
}

/** How the program ended; a cancel sends it SIGTERM, then SIGKILL after KILL_GRACE_MS. */
async function programEnd(program: StartedProgram, signal: AbortSignal): Promise<ProgramEnd> {
  let killTimer: NodeJS.Timeout | undefined;
  const stopListening = addAbortListener(signal, () => {
    program.kill('SIGTERM');
    killTimer = setTimeout(() => program.kill('SIGKILL'), KILL_GRACE_MS);
    killTimer.unref();
  });
  try {
    return await program.ended;
  } finally {
    stopListening[Symbol.dispose]();
    clearTimeout(killTimer);
  }
}

async function sandboxed(ctx: StageContext, params: ExecParams, cwd: string, argv: string[]): Promise<string[]> {
  const { sandboxArgv } = await import('./sandbox.js');
  return sandboxArgv(ctx, { inputs: params.inputs, upstream: ctx.upstream ?? [], cwd }, argv[0]!, argv.slice(1));
}

export async function runExec(ctx: StageContext, params: ExecParams): Promise<void> {
  const shell = params.shell;
  const raw = params.argv;
  const argv = (Array.isArray(raw) ? raw : [raw]).map((a) => substitute(String(a), ctx.outDir));
  if (argv.length === 0 || argv[0] === '') throw new Error('exec: argv is empty: give the program to run');
  if (shell && argv.length !== 1) {
    throw new Error('exec: with shell = true, argv must be one command string (or an array of one element)');
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(params.env)) env[k] = substitute(v, ctx.outDir);
  for (const k of Object.keys(env)) {
    if (CREDENTIAL.test(k))
      ctx.log.warn(
        `exec: env ${k} looks like a credential; its value is part of the key, recorded and printed like any param: use secret_env = ["${k}"] instead`,
      );
  }
  const cwd = resolve(ctx.projectDir, params.cwd);
  if (!existsSync(cwd)) throw new Error(`exec: working directory ${cwd} does not exist`);
  // Programs that take GPUs from the environment see only the granted devices.
  if (ctx.resources.gpuIds.length) env.CUDA_VISIBLE_DEVICES = ctx.resources.gpuIds.join(',');
  const secrets = secretValues(params);
  Object.assign(env, secrets);
  // With secrets, the program's output goes through a filter that hides their values (./redact.ts).
  const redact = Object.keys(secrets).length > 0;

  const command = shell ? ['/bin/sh', '-c', argv[0]!] : argv;
  const file = command[0]!;
  const [bin, ...args] = params.sandbox === true ? await sandboxed(ctx, params, cwd, command) : command;
  if (ctx.signal.aborted) throw new Error('exec: cancelled');
  const programEnv = { ...process.env, ...env, SMKE_OUT: ctx.outDir, SMKE_ATTEMPT: String(ctx.attempt), SMKE_SEED: String(ctx.seed) };
  let ended: ProgramEnd;
  if (ctx.startProgram && !redact) {
    // A pooled worker's starter (posix_spawn), straight into the log.
    ended = await programEnd(ctx.startProgram({ file: bin!, args, cwd, env: programEnv }), ctx.signal);
  } else {
    // node:child_process rather than execa: execa's option handling and result
    // object cost ~5 ms of CPU per program, most of a trivial stage's own cost.
    const sub = spawn(bin!, args, {
      cwd,
      env: programEnv,
      // Secrets: piped through the filter. Otherwise straight to the log (a pooled
      // worker's per-job descriptor) or to the worker's own output.
      stdio: ['ignore', redact ? 'pipe' : (ctx.outputFd ?? 'inherit'), redact ? 'pipe' : (ctx.outputFd ?? 'inherit')],
    });
    // Attached before any await: a chunk read before the pipe exists is lost.
    const drained = redact ? redacted(sub, Object.values(secrets), ctx.outputFd) : [];
    ended = await programEnd(nodeProgram(sub), ctx.signal);
    await Promise.all(drained);
  }
  if (ctx.signal.aborted) throw new Error('exec: cancelled');
  if ('error' in ended) throw new Error(`exec: could not run ${file}: ${ended.error.message}`);
  if (ended.signal) throw new Error(`exec: ${file} was killed by ${ended.signal}`);
  if (ended.code !== 0) throw new Error(`exec: ${file} exited with code ${ended.code}`);
  const missing = Object.values(execOutputPaths(params.outputs)).filter((p) => !existsSync(join(ctx.outDir, p)));
  if (missing.length) throw new Error(`exec: declared output(s) not created in {out}: ${missing.join(', ')}`);
  if (typeof params.metrics === 'string') reportMetrics(ctx, params.metrics);
}

/** Reads the program's metrics file and reports every number in it (nested keys joined with '.'). */
function reportMetrics(ctx: StageContext, file: string): void {
  const path = join(ctx.outDir, file);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'was not created' : `is not valid JSON (${(e as Error).message})`;
    throw new Error(`exec: the metrics file {out}/${file} ${why}: the program must write a JSON object of numbers there`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new Error(
      `exec: the metrics file {out}/${file} must hold a JSON object ({"accuracy": 0.91}), not ${Array.isArray(doc) ? 'an array' : JSON.stringify(doc)}`,
    );
  }
  const walk = (o: object, prefix: string): void => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'number') ctx.metric(prefix + k, v);
      else if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v, `${prefix}${k}.`);
      // Strings, booleans and lists are kept in the file but are not metrics.
    }
  };
  walk(doc, '');
}
