// The local executor: each job is a process group of its own (detached), so a
// cancel reaches the worker and everything it started, and a Ctrl-C in the
// terminal reaches only the orchestrator, which decides what to do. Output
// goes straight to the log file (no copy through this process); events come
// back on file descriptor 3 as JSON lines.

import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import type { WorkerEvent } from '../events.js';
import { stageEnv } from '../secrets.js';
import type { Executor, JobExit, JobHandle, JobRequest } from './types.js';

interface LocalHandle extends JobHandle {
  proc: Promise<unknown>;
  pid: number;
  done: Promise<JobExit>;
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  private seq = 0;

  async submit(job: JobRequest, onEvent: (e: WorkerEvent) => void): Promise<JobHandle> {
    mkdirSync(dirname(job.logPath), { recursive: true });
    const log = openSync(job.logPath, 'a', 0o600);
    const spawn = () =>
      execa(job.command[0]!, job.command.slice(1), {
        cwd: job.cwd,
        env: { ...stageEnv(process.env, job.passEnv), ...job.env, SMKE_EVENTS_FD: '3' },
        extendEnv: false,
        detached: true,
        // execa 9 accepts a file descriptor here at run time, but its types
        // only admit literal numbers; the fd goes to the child directly.
        stdio: ['ignore', log as 1, log as 1, 'pipe'],
        reject: false,
        buffer: false,
        // A detached group outlives us by design (a killed orchestrator's
        // finished work is still published); execa must not kill it on exit.
        cleanup: false,
      });
    let proc: ReturnType<typeof spawn>;
    try {
      proc = spawn();
    } finally {
      // The child has its own copy of the descriptor once spawned.
      closeSync(log);
    }
    const pid = proc.pid;
    if (pid === undefined) {
      const r = await proc;
      throw new Error(`could not start the worker: ${r.message ?? 'unknown error'}`);
    }
    const events = proc.stdio[3] as Readable;
    const lines = createInterface({ input: events, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (!line) return;
      try {
        onEvent(JSON.parse(line) as WorkerEvent);
      } catch {
        // A torn line from a killed worker: ignore it; its exit status decides.
      }
    });
    const linesClosed = new Promise<void>((res) => lines.once('close', () => res()));
    const done = proc.then(async (r) => {
      await linesClosed;
      return { exitCode: r.exitCode ?? null, signal: r.signal ?? null };
    });
    return { id: `local-${++this.seq}-${pid}`, proc, pid, done } as LocalHandle;
  }

  wait(handle: JobHandle): Promise<JobExit> {
    return (handle as LocalHandle).done;
  }

  async cancel(handle: JobHandle, graceMs = 5000): Promise<void> {
    const h = handle as LocalHandle;
    const kill = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-h.pid, sig);
      } catch {
        /* group already gone */
      }
    };
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), graceMs);
    void h.done.finally(() => clearTimeout(timer));
  }
}
