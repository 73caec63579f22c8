// The local executor's own-process jobs (not pooled): how a job's end is
// reported, with real processes. Pooled jobs are covered by pool.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WorkerEvent } from '../../src/runtime/events.js';
import { LocalExecutor } from '../../src/runtime/executors/local.js';
import type { JobRequest } from '../../src/runtime/executors/executor.js';
import { tempProject } from './helpers.js';

let proj: ReturnType<typeof tempProject>;
beforeEach(() => {
  proj = tempProject();
});
afterEach(() => proj.cleanup());

const job = (command: string[]): JobRequest => ({
  name: 'j',
  command,
  cwd: proj.dir,
  env: {},
  resources: { cpus: 1, gpus: 0, memBytes: 0, timeSeconds: 0, gpuIds: [] },
  logPath: join(proj.dir, 'logs/j.log'),
  eventsPath: join(proj.dir, 'j.events'),
});

describe('the local executor, a job in a process of its own', () => {
  it('reports the exit code, the events written on fd 3, and sends output to the log', async () => {
    const ex = new LocalExecutor();
    const events: WorkerEvent[] = [];
    const script = `echo to-log; echo '{"type":"log","level":"info","message":"hi"}' >&3; echo 'torn' >&3; exit 3`;
    const h = await ex.submit(job(['/bin/sh', '-c', script]), (e) => events.push(e));
    expect(await ex.wait(h)).toEqual({ exitCode: 3, signal: null });
    // The torn line is ignored: the exit status decides.
    expect(events).toEqual([{ type: 'log', level: 'info', message: 'hi' }]);
    expect(readFileSync(join(proj.dir, 'logs/j.log'), 'utf8')).toBe('to-log\n');
  });

  it('reports a job killed by a signal, and cancel stops the whole process group', async () => {
    const ex = new LocalExecutor();
    const killed = await ex.submit(job(['/bin/sh', '-c', 'kill -9 $$']), () => undefined);
    expect(await ex.wait(killed)).toEqual({ exitCode: null, signal: 'SIGKILL' });
    // A child of the job that ignores nothing: the group's SIGTERM reaches it too.
    const h = await ex.submit(job(['/bin/sh', '-c', 'sleep 30 & wait']), () => undefined);
    await ex.cancel(h, 1000);
    expect(await ex.wait(h)).toEqual({ exitCode: null, signal: 'SIGTERM' });
  });

  it('a program that cannot be started is an error that names why', async () => {
    const ex = new LocalExecutor();
    await expect(ex.submit(job([join(proj.dir, 'no-such-program')]), () => undefined)).rejects.toThrow(/could not start the worker: .*ENOENT/);
  });
});
