// The worker: runs one stage instance described by a job file, in its own
// process, and publishes the result. It streams events as JSON lines to file
// descriptor SMKE_EVENTS_FD (local executor) or appends them to the job's
// events file (remote executors), and always ends with one `final` event.
// The worker, not the orchestrator, publishes: work that finished is kept
// even when the orchestrator was killed meanwhile.
//
// Two ways to run: `smke worker JOB.json` runs one job and exits (Slurm, and
// kinds that want a fresh process); `smke worker --serve` is a pooled local
// worker that reads jobs as JSON lines on stdin, one at a time, and after each
// writes `{"type":"done","code":N}` on the events pipe. Starting Node and
// loading the registry once per worker instead of once per job is what makes
// a trivial stage cheap. A pooled worker is as crash-safe as a fresh one: it
// is its own process group, holds the job's lock under its own pid, and when
// the orchestrator dies (stdin closes) it finishes and publishes the job in
// hand, then exits.

import { appendFileSync, closeSync, mkdirSync, openSync, rmSync, existsSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { StageContext } from '../stages/stage-kind.js';
import { loadKind } from '../stages/kind-loader.js';
import { Digester } from './digest.js';
import { inParentDir } from './disk.js';
import type { WorkerEvent } from './events.js';
import { mapParams } from './fingerprint.js';
import { readJob, refKey, type JobSpec } from './job.js';
import { AttemptFailed } from './attempt-failure.js';
import { adopt, release, thisHost } from './locks.js';
import { removeTree } from './readonly.js';
import { META_DIR, publish, storeSynced } from './store.js';
import { openStarter, type ProgramStarter } from './program-starter.js';
import { procMark, reapStrays } from './strays.js';
import { smkeVersion } from './version.js';

/** Exit codes of the worker (the final event carries the detail). */
export const WORKER_EXIT = { ok: 0, failed: 1, lostLock: 75, cancelled: 130 } as const;

class EventSink {
  private stream: Socket | undefined;
  private broken = false;
  /** `pooled`: a 'done' follows each job's final event, and leaves with it (see emit). */
  constructor(
    private readonly file: string,
    private readonly pooled = false,
  ) {
    const fd = Number(process.env.SMKE_EVENTS_FD);
    if (Number.isInteger(fd) && fd > 2) {
      // The events pipe as a stream socket: a write goes straight to the pipe when it has room.
      // (An fs.WriteStream sent every write through libuv's thread pool: two thread hand-offs
      // per event, on the path of every stage.)
      this.stream = new Socket({ fd, readable: false, writable: true });
      // The orchestrator may be gone (killed): keep working, and publish.
      this.stream.on('error', () => {
        this.broken = true;
      });
    }
  }
  emit(e: WorkerEvent | { type: 'done'; code: number; last: boolean }): void {
    const line = `${JSON.stringify(e)}\n`;
    if (this.stream) {
      if (this.broken) return;
      // A pooled job's final event waits for the 'done' written a moment later, and both leave in one
      // write: one wake-up of the orchestrator per job, not two.
      if (this.pooled && e.type === 'final') this.stream.cork();
      this.stream.write(line);
      if (e.type === 'done') this.stream.uncork();
    } else appendFileSync(this.file, line);
  }
  async close(): Promise<void> {
    const s = this.stream;
    if (!s || this.broken) return;
    await new Promise<void>((res) => s.end(() => res()));
  }
}

export async function runWorker(jobPath: string): Promise<number> {
  const job = readJob(jobPath);
  const sink = new EventSink(job.eventsPath);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('cancelled'));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // The process's own stdout/stderr are the job's log (the executor opened it).
  const code = await runJob(job, sink, controller.signal, { write: (t) => process.stderr.write(t) }, jobPath);
  await storeSynced();
  await sink.close();
  return code;
}

/** Outputs past which a success's event leaves the entry's files out (a dataset of a million images). */
const MAX_REPORTED_FILES = 10_000;

/**
 * Jobs a pooled worker runs before it is replaced (bounds slow leaks in kinds that the memory
 * check below does not see). A new worker costs ~0.2 s of CPU (Node, its modules, its starter):
 * at 500, a run of 1,000 trivial stages on two workers started a third for its last few jobs.
 */
const POOL_MAX_JOBS = 10_000;
/** Growth of the heap and external memory over the first job's, past which a pooled worker is replaced. */
const POOL_MAX_GROWTH = 256 << 20;

/**
 * `smke worker --serve`: run jobs from stdin (one JSON JobSpec per line) until
 * stdin closes. SIGTERM cancels the job in hand and retires the worker (the
 * executor kills a cancelled worker's whole process group anyway).
 */
export async function serveWorker(): Promise<number> {
  const sink = new EventSink('', true);
  let current: AbortController | undefined;
  let retire = false;
  const onSignal = (): void => {
    retire = true;
    current?.abort(new Error('cancelled'));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let jobs = 0;
  let base: number | undefined;
  // One program starter per pooled worker (./program-starter.ts). It starts, and the hasher's
  // WebAssembly compiles, while the first job is on its way.
  const starting = openStarter();
  void digester();
  for await (const line of lines) {
    if (!line) continue;
    const job = JSON.parse(line) as JobSpec;
    current = new AbortController();
    if (retire) current.abort(new Error('cancelled'));
    // The run's log directory is made by the first job of the run that finds it missing.
    const fd = inParentDir(job.logPath, () => openSync(job.logPath, 'a', 0o600));
    const starter = await starting;
    let code: number;
    try {
      code = await runJob(job, sink, current.signal, {
        write: (t) => {
          writeSync(fd, t);
        },
        fd,
        ...(starter && { starter }),
      });
    } finally {
      closeSync(fd);
    }
    current = undefined;
    // V8's own counters: process.memoryUsage() also reads the resident size from /proc, a tenth of a millisecond a job.
    const heap = getHeapStatistics();
    const used = heap.used_heap_size + heap.external_memory;
    base ??= used;
    if (++jobs >= POOL_MAX_JOBS || used - base > POOL_MAX_GROWTH) retire = true;
    sink.emit({ type: 'done', code, last: retire });
    if (retire) break;
  }
  lines.close();
  (await starting)?.close();
  await storeSynced();
  await sink.close();
  return 0;
}

// One hasher per process: a pooled worker publishes many jobs. No stat cache:
// each job's outputs are new files.
let hasher: Promise<Digester> | undefined;
const digester = (): Promise<Digester> => (hasher ??= Digester.create());

/** Where a job's own log lines, and the output of the programs it starts, go. */
interface JobOutput {
  write(text: string): void;
  /** A descriptor for child programs' stdout/stderr; absent: they inherit the worker's. */
  fd?: number;
  /** Starts child programs appending to the job's log (the file `fd` writes), more cheaply than Node can. */
  starter?: ProgramStarter;
}

async function runJob(job: JobSpec, sink: EventSink, signal: AbortSignal, out: JobOutput, jobPath?: string): Promise<number> {
  const finish = (e: WorkerEvent & { type: 'final' }, code: number): number => {
    // The job file is ours to remove: an orchestrator killed meanwhile cannot.
    if (jobPath) rmSync(jobPath, { force: true });
    sink.emit(e);
    return code;
  };

  if (!adopt(job.lock.path, job.lock.token, process.pid)) {
    // Our orchestrator died and someone else took the instance over: do not race them.
    return finish({ type: 'final', status: 'lost-lock', error: 'the instance lock was taken over by another run' }, WORKER_EXIT.lostLock);
  }
  const releaseLock = (): void => release(job.lock.path, job.lock.token);

  let started: Date;
  const metrics: Record<string, number> = {};
  try {
    const kind = await loadKind(job.kind);
    if (!kind) throw new Error(`stage kind '${job.kind}' is not registered in this smke (${smkeVersion()})`);
    if (kind.version !== job.kindVersion) {
      throw new Error(`stage kind '${job.kind}' is version ${kind.version} here but the plan was made with version ${job.kindVersion}: rerun smke run`);
    }
    removeTree(job.tmpDir);
    // Only the output directory now; its META_DIR with the first metric (or at publish): a stage
    // without metrics is spared a directory creation, which costs on some file systems (see scratchDir).
    mkdirSync(job.tmpDir, { recursive: true });
    const metricsPath = join(job.tmpDir, META_DIR, 'metrics.jsonl');
    let metaMade = false;

    const params = mapParams(job.params, (ref) => {
      const p = job.refPaths[refKey(ref.instance, ref.output)];
      if (p === undefined) throw new Error(`no path for the reference ${ref.instance}.${ref.output}`);
      return p;
    });
    let scratchMade = false;
    const log =
      (level: string) =>
      (message: string): void => {
        out.write(`[${level}] ${message}\n`);
        sink.emit({ type: 'log', level, message });
      };
    const ctx: StageContext = {
      instance: job.instance,
      stage: job.stage,
      key: job.key,
      outDir: job.tmpDir,
      get scratchDir() {
        // Made on first use only: freeing a directory's block on removal costs milliseconds on some
        // file systems (ext4 with online discard), more than the rest of a trivial stage's file work.
        if (!scratchMade) mkdirSync(job.scratchDir, { recursive: true });
        scratchMade = true;
        return job.scratchDir;
      },
      projectDir: job.projectDir,
      upstream: Object.values(job.refPaths),
      attempt: job.attempt,
      seed: job.seed,
      resources: job.resources,
      backend: job.backend,
      outputFd: out.fd,
      ...(out.starter && { startProgram: (spec) => out.starter!.start(spec, job.logPath) }),
      log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
      progress: (done, total, unit) => sink.emit({ type: 'progress', done, total, unit }),
      metric: (name, value, step) => {
        metrics[name] = value;
        if (!metaMade) mkdirSync(dirname(metricsPath), { recursive: true });
        metaMade = true;
        appendFileSync(metricsPath, `${JSON.stringify({ name, value, step, time: Date.now() })}\n`);
        sink.emit({ type: 'metric', name, value, step });
      },
      signal,
    };

    // The manifest's timings are the stage's own time; `smke history` shows the rest as overhead.
    started = new Date();
    const startedAt = procMark();
    // Whatever the stage started dies here, before its outputs are digested (./strays.ts).
    const stopStrays = async (): Promise<void> => {
      for (const s of await reapStrays(job.tmpDir, [job.scratchDir], { startedAt, spare: out.starter?.pid }))
        ctx.log.warn(`killed pid ${s.pid} (${s.command}), left running by the stage: ${s.why}`);
    };
    await kind.run(ctx, params).then(stopStrays, async (e: unknown) => {
      await stopStrays().catch(() => undefined);
      throw e;
    });
    if (signal.aborted) throw signal.reason;

    const missing = Object.entries(kind.outputs(params))
      .filter(([, spec]) => spec.path !== '.' && !existsSync(join(job.tmpDir, spec.path)))
      .map(([name, spec]) => `${name} (${spec.path})`);
    if (missing.length) throw new AttemptFailed({ kind: 'missing-output', outputs: missing });

    const finished = new Date();
    const published = await publish({
      tmpDir: job.tmpDir,
      entryDir: job.entryDir,
      logPath: job.logPath,
      digester: await digester(),
      deferSync: job.deferSync === true,
      manifest: {
        format: 1,
        key: job.key,
        instance: job.instance,
        stage: job.stage,
        kind: job.kind,
        kindVersion: job.kindVersion,
        params: job.symbolic,
        fingerprint: job.fingerprint,
        upstream: job.upstream,
        metrics,
        timings: { started: started.toISOString(), finished: finished.toISOString(), seconds: (finished.getTime() - started.getTime()) / 1000 },
        attempt: job.attempt,
        smkeVersion: smkeVersion(),
        host: thisHost(),
      },
    });
    // Scratch is for resuming failed attempts; a published result needs none.
    removeTree(job.scratchDir);
    releaseLock();
    // The files as digested, so that the orchestrator's check of the entry is a stat of each (not a
    // second read of every output); past a size the event should not have, it reads them itself.
    const files = published.files && published.files.length <= MAX_REPORTED_FILES ? { files: published.files } : {};
    return finish({ type: 'final', status: 'succeeded', published: published.how, ...files }, WORKER_EXIT.ok);
  } catch (e) {
    removeTree(job.tmpDir);
    releaseLock();
    const cancelled = signal.aborted;
    const error = e instanceof Error ? e.message : String(e);
    out.write(`smke worker: ${job.instance}: ${cancelled ? 'cancelled' : error}\n`);
    return finish(
      cancelled ? { type: 'final', status: 'cancelled' } : { type: 'final', status: 'failed', error, ...(e instanceof AttemptFailed && { reason: e.failure }) },
      cancelled ? WORKER_EXIT.cancelled : WORKER_EXIT.failed,
    );
  }
}
