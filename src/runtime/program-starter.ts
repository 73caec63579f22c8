// Starts the programs of a pooled worker's stages through a resident starter
// (native/spawn-server.c, built to dist/native/spawn-server by `npm run build`)
// instead of node:child_process. Node forks, copying the page tables of the
// whole worker and blocking its event loop until the child has exec'd: about
// 3 ms of the worker's CPU per program on this project's 2-core VM, growing
// with load, which is most of a trivial stage. The starter uses posix_spawn
// (vfork), as ninja does: ~0.5 ms of the worker's CPU per program.
//
// It is offered to stages (StageContext.startProgram) only by pooled workers,
// whose job logs are files the starter can append to; a worker of its own
// starts one program per process, where a second resident process would cost
// more than it saves. Without the binary (no C compiler at build time, not
// Linux) or with SMKE_PROGRAM_STARTER=node, stages start programs with Node.
//
// The starter is a child of the worker in the worker's process group: a
// cancel (the executor kills the group) stops it and every program it
// started, and programs' own children stay in the group, where the stray scan
// looks for them (the starter itself is spared: `pid`).

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ProgramEnd, ProgramSpec, StartedProgram } from '../stages/stage-kind.js';

/** The starter binary, in the package's dist/ (this file is in src/runtime or dist/runtime). */
export const STARTER_PATH = fileURLToPath(new URL('../../dist/native/spawn-server', import.meta.url));

/** The protocol of native/spawn-server.c this client speaks; the starter names its own in its first line. */
const PROTOCOL = '2';

/** How long a starter has to say it is ready before it is taken for one that cannot run here. */
const READY_TIMEOUT_MS = 5000;

/** The starter pooled workers use here: wanted (not SMKE_PROGRAM_STARTER=node), on Linux, built, and runnable. */
export function openStarter(): Promise<ProgramStarter | undefined> {
  return process.env.SMKE_PROGRAM_STARTER !== 'node' && process.platform === 'linux' ? ProgramStarter.open() : Promise.resolve(undefined);
}

const signalNames = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));
const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

interface Pending {
  resolveEnd(end: ProgramEnd): void;
  file: string;
}

export class ProgramStarter {
  private proc: ChildProcessByStdio<Writable, Readable, null> | undefined;
  private nextId = 1;
  /** Programs asked for, by id, until the starter says they failed to start or ended. */
  private readonly byId = new Map<string, Pending>();
  private partial = '';
  /** Told whether the starter came up: by its "R <protocol>" line, or by its end before that line. */
  private onReady: ((ok: boolean) => void) | undefined;

  constructor(private readonly path = STARTER_PATH) {}

  /**
   * A started starter, once it says it is ready; undefined if it cannot run on this machine (a dist/
   * built elsewhere may hold a binary of another architecture), and then programs are started with
   * Node rather than failed. One start is both the check and the starter: a pooled worker opens it
   * while it loads the rest of what its first job needs, and the first program does not wait for it.
   */
  static async open(path = STARTER_PATH): Promise<ProgramStarter | undefined> {
    if (!existsSync(path)) return undefined;
    const s = new ProgramStarter(path);
    const ok = await new Promise<boolean>((res) => {
      const timer = setTimeout(() => res(false), READY_TIMEOUT_MS);
      s.onReady = (ready) => {
        clearTimeout(timer);
        res(ready);
      };
      s.ensure();
    });
    s.onReady = undefined;
    if (ok) return s;
    const proc = s.proc;
    s.proc = undefined;
    proc?.kill('SIGKILL');
    return undefined;
  }

  /** The starter's pid while it runs (the stray scan must spare it). */
  get pid(): number | undefined {
    return this.proc?.exitCode === null ? this.proc.pid : undefined;
  }

  /** Starts `spec` with its stdout and stderr appended to `logPath`. */
  start(spec: ProgramSpec, logPath: string): StartedProgram {
    const proc = this.ensure();
    const id = String(this.nextId++);
    let resolveEnd!: (end: ProgramEnd) => void;
    const ended = new Promise<ProgramEnd>((res) => (resolveEnd = res));
    const pending: Pending = { resolveEnd, file: spec.file };
    this.byId.set(id, pending);
    const env = Object.entries(spec.env)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`);
    const fields = [id, spec.cwd, logPath, String(spec.args.length + 1), spec.file, ...spec.args, String(env.length), ...env];
    if (fields.some((f) => f.includes('\0'))) {
      this.byId.delete(id);
      resolveEnd({ error: new Error(`spawn ${spec.file}: an argument or environment value contains a NUL byte`) });
    } else proc.stdin.write(`${fields.join('\0')}\0`);
    return {
      ended,
      // By id: the starter signals the program only while it has not reaped it (its pid is then still its own).
      kill: (signal) => {
        if (this.byId.get(id) === pending) this.proc?.stdin.write(`K\0${id}\0${constants.signals[signal]}\0`);
      },
    };
  }

  /** Lets the starter exit (it does once its stdin closes); programs still running are not stopped. */
  close(): void {
    this.proc?.stdin.end();
    this.proc = undefined;
  }

  private ensure(): ChildProcessByStdio<Writable, Readable, null> {
    if (this.proc) return this.proc;
    const proc = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    proc.stdout.setEncoding('latin1');
    proc.stdout.on('data', (chunk: string) => this.read(chunk));
    // A starter that dies (killed, out of memory) fails what it had in hand; the next program starts a new one.
    const lost = (why: string): void => {
      if (this.proc === proc) this.proc = undefined;
      this.onReady?.(false);
      const error = new Error(`the program starter (${this.path}) ${why}`);
      for (const p of this.byId.values()) p.resolveEnd({ error });
      this.byId.clear();
    };
    proc.once('error', (e) => lost(`could not run: ${e.message}`));
    proc.once('exit', (code, sig) => lost(sig ? `was killed by ${sig}` : `exited with code ${code}`));
    proc.stdin.on('error', () => undefined); // reported through 'exit'
    this.proc = proc;
    return proc;
  }

  private read(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) {
      const [tag, a, b, c] = line.split(' ');
      // Ready, and speaking this client's protocol: a dist/native built from an older source is not used.
      if (tag === 'R') this.onReady?.(a === PROTOCOL);
      else if (tag === 'E') {
        const p = this.byId.get(a!);
        if (!p) continue;
        this.byId.delete(a!);
        const code = errnoNames.get(Number(b)) ?? `errno ${b}`;
        p.resolveEnd({ error: Object.assign(new Error(`spawn ${p.file} ${code}`), { code }) });
      } else if (tag === 'X') {
        const p = this.byId.get(a!);
        if (!p) continue;
        this.byId.delete(a!);
        const signal = Number(c) > 0 ? (signalNames.get(Number(c)) ?? null) : null;
        p.resolveEnd({ code: signal ? null : Number(b), signal });
      }
    }
  }
}
