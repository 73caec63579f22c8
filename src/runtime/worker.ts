// The worker: runs one stage instance described by a job file, in its own
// process, and publishes the result. It streams events as JSON lines to file
// descriptor SMKE_EVENTS_FD (local executor) or appends them to the job's
// events file (remote executors), and always ends with one `final` event.
// The worker, not the orchestrator, publishes: work that finished is kept
// even when the orchestrator was killed meanwhile.

import { appendFileSync, createWriteStream, mkdirSync, rmSync, existsSync, type WriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { StageContext, StageKind } from '../stages/kind.js';
import { registry } from '../stages/registry.js';
import { Digester } from './digest.js';
import type { WorkerEvent } from './events.js';
import { mapParams } from './fingerprint.js';
import { readJob, refKey } from './job.js';
import { adopt, release } from './locks.js';
import { removeTree } from './readonly.js';
import { META_DIR, publish } from './store.js';
import { reapStrays } from './strays.js';
import { smkeVersion } from './version.js';

/** Exit codes of the worker (the final event carries the detail). */
export const WORKER_EXIT = { ok: 0, failed: 1, lostLock: 75, cancelled: 130 } as const;

class EventSink {
  private stream: WriteStream | undefined;
  private broken = false;
  constructor(private readonly file: string) {
    const fd = Number(process.env.SMKE_EVENTS_FD);
    if (Number.isInteger(fd) && fd > 2) {
      this.stream = createWriteStream('', { fd, autoClose: false });
      // The orchestrator may be gone (killed): keep working, and publish.
      this.stream.on('error', () => {
        this.broken = true;
      });
    }
  }
  emit(e: WorkerEvent): void {
    const line = `${JSON.stringify(e)}\n`;
    if (this.stream) {
      if (!this.broken) this.stream.write(line);
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
  const finish = async (e: WorkerEvent & { type: 'final' }, code: number): Promise<number> => {
    // The job file is ours to remove: an orchestrator killed meanwhile cannot.
    rmSync(jobPath, { force: true });
    sink.emit(e);
    await sink.close();
    return code;
  };

  if (!adopt(job.lock.path, job.lock.token, process.pid)) {
    // Our orchestrator died and someone else took the instance over: do not race them.
    return finish({ type: 'final', status: 'lost-lock', error: 'the instance lock was taken over by another run' }, WORKER_EXIT.lostLock);
  }
  const releaseLock = (): void => release(job.lock.path, job.lock.token);

  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('cancelled'));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  const started = new Date();
  const metrics: Record<string, number> = {};
  try {
    const kind = registry().get(job.kind) as StageKind | undefined;
    if (!kind) throw new Error(`stage kind '${job.kind}' is not registered in this smke (${smkeVersion()})`);
    if (kind.version !== job.kindVersion) {
      throw new Error(`stage kind '${job.kind}' is version ${kind.version} here but the plan was made with version ${job.kindVersion}: rerun smke run`);
    }
    rmSync(job.tmpDir, { recursive: true, force: true });
    mkdirSync(join(job.tmpDir, META_DIR), { recursive: true });
    mkdirSync(job.scratchDir, { recursive: true });
    const metricsPath = join(job.tmpDir, META_DIR, 'metrics.jsonl');

    const params = mapParams(job.params, (ref) => {
      const p = job.refPaths[refKey(ref.instance, ref.output)];
      if (p === undefined) throw new Error(`no path for the reference ${ref.instance}.${ref.output}`);
      return p;
    });
    const log =
      (level: string) =>
      (message: string): void => {
        process.stderr.write(`[${level}] ${message}\n`);
        sink.emit({ type: 'log', level, message });
      };
    const ctx: StageContext = {
      instance: job.instance,
      stage: job.stage,
      key: job.key,
      outDir: job.tmpDir,
      scratchDir: job.scratchDir,
      projectDir: job.projectDir,
      upstream: Object.values(job.refPaths),
      attempt: job.attempt,
      seed: job.seed,
      resources: job.resources,
      backend: job.backend,
      log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
      progress: (done, total, unit) => sink.emit({ type: 'progress', done, total, unit }),
      metric: (name, value, step) => {
        metrics[name] = value;
        appendFileSync(metricsPath, `${JSON.stringify({ name, value, step, time: Date.now() })}\n`);
        sink.emit({ type: 'metric', name, value, step });
      },
      signal: controller.signal,
    };

    // Whatever the stage started dies here, before its outputs are digested (./strays.ts).
    const stopStrays = async (): Promise<void> => {
      for (const s of await reapStrays(job.tmpDir, [job.scratchDir])) ctx.log.warn(`killed pid ${s.pid} (${s.command}), left running by the stage: ${s.why}`);
    };
    await kind.run(ctx, params).then(stopStrays, async (e: unknown) => {
      await stopStrays().catch(() => undefined);
      throw e;
    });
    if (controller.signal.aborted) throw controller.signal.reason;

    const missing = Object.entries(kind.outputs(params))
      .filter(([, spec]) => spec.path !== '.' && !existsSync(join(job.tmpDir, spec.path)))
      .map(([name, spec]) => `${name} (${spec.path})`);
    if (missing.length) throw new Error(`declared output(s) not created: ${missing.join(', ')}`);

    const finished = new Date();
    const published = publish({
      tmpDir: job.tmpDir,
      entryDir: job.entryDir,
      logPath: job.logPath,
      digester: await Digester.create(),
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
        host: hostname(),
      },
    });
    // Scratch is for resuming failed attempts; a published result needs none.
    rmSync(job.scratchDir, { recursive: true, force: true });
    releaseLock();
    return await finish({ type: 'final', status: 'succeeded', published }, WORKER_EXIT.ok);
  } catch (e) {
    removeTree(job.tmpDir);
    releaseLock();
    const cancelled = controller.signal.aborted;
    const error = e instanceof Error ? e.message : String(e);
    process.stderr.write(`smke worker: ${job.instance}: ${cancelled ? 'cancelled' : error}\n`);
    return finish(
      cancelled ? { type: 'final', status: 'cancelled' } : { type: 'final', status: 'failed', error },
      cancelled ? WORKER_EXIT.cancelled : WORKER_EXIT.failed,
    );
  }
}
