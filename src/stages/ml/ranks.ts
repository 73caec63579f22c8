// Data-parallel ranks of a training stage: with `gpus = N` (N > 1 granted
// devices) the stage's own process is rank 0 and starts ranks 1..N-1 as child
// processes, one per device (CUDA_VISIBLE_DEVICES = that device), which join
// rank 0's Unix-socket group (src/ml/data-parallel.ts). Only rank 0 reports
// progress and metrics and writes outputs and resume checkpoints; the other
// ranks read the same inputs and compute their share of each step.

import { spawn, type ChildProcess } from 'node:child_process';
import { addAbortListener } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StageContext } from '../stage-kind.js';
import { listenRoot, type Communicator } from '../../ml/data-parallel.js';
import type { TrainSmkeParams } from './s-smke.js';

/** What a child rank needs to run its share of the stage (written as JSON for rank-main.js). */
export interface RankJob {
  kind: 'train.s_smke';
  params: TrainSmkeParams;
  seed: number;
  backend?: string;
  scratchDir: string;
  projectDir: string;
  instance: string;
  socket: string;
  rank: number;
  world: number;
}

/** The compiled child entry point; the test suite runs the TypeScript sources, whose children run dist/. */
function rankMain(): string {
  const here = fileURLToPath(new URL('./rank-main.js', import.meta.url));
  if (existsSync(here)) return here;
  const built = here.replace(/([/\\])src([/\\])stages([/\\])ml([/\\])rank-main\.js$/, '$1dist$2stages$3ml$4rank-main.js');
  if (existsSync(built)) return built;
  throw new Error(`data-parallel ranks need the compiled ${built}: run \`npx tsc -p tsconfig.json\` first`);
}

export interface Ranks {
  comm: Communicator;
  /** Waits for the children after a successful run; kills them after a failure. */
  stop(ok: boolean): Promise<void>;
}

/**
 * The devices of the ranks: the scheduler's grant locally; on Slurm (no grant: Slurm picks the GPUs)
 * the allocation's CUDA_VISIBLE_DEVICES when it lists the stage's `gpus`.
 */
export function rankDevices(ctx: StageContext, env: NodeJS.ProcessEnv = process.env): number[] {
  if (ctx.resources.gpuIds.length) return ctx.resources.gpuIds;
  const listed = (env.CUDA_VISIBLE_DEVICES ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => /^\d+$/.test(x))
    .map(Number);
  return ctx.resources.gpus > 1 && listed.length >= ctx.resources.gpus ? listed.slice(0, ctx.resources.gpus) : [];
}

/** Starts ranks 1..N-1 for `kind` and returns rank 0's communicator once every rank has joined. */
export async function startRanks(ctx: StageContext, kind: RankJob['kind'], params: TrainSmkeParams): Promise<Ranks> {
  const gpus = rankDevices(ctx);
  const world = gpus.length;
  // Unix socket paths are limited to ~107 bytes: a short private directory, not the scratch directory.
  const dir = await mkdtemp(join(tmpdir(), 'smke-dp-'));
  const socket = join(dir, 's');
  const { ready, server } = await listenRoot(socket, world, { timeoutMs: 300_000 });
  const children: ChildProcess[] = [];
  const exits: Promise<number | null>[] = [];
  const entry = rankMain();
  for (let rank = 1; rank < world; rank++) {
    const job: RankJob = { kind, params, seed: ctx.seed, scratchDir: ctx.scratchDir, projectDir: ctx.projectDir, instance: ctx.instance, socket, rank, world };
    if (ctx.backend) job.backend = ctx.backend;
    const file = join(dir, `rank-${rank}.json`);
    await writeFile(file, JSON.stringify(job));
    const child = spawn(process.execPath, [entry, file], {
      cwd: ctx.projectDir,
      env: { ...process.env, CUDA_VISIBLE_DEVICES: String(gpus[rank]) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const relay = (chunk: Buffer) => {
      const lines = (tail + chunk.toString('utf8')).split('\n');
      tail = lines.pop()!;
      for (const l of lines) if (l.trim()) ctx.log.info(`rank ${rank}: ${l}`);
    };
    child.stdout!.on('data', relay);
    child.stderr!.on('data', relay);
    exits.push(
      new Promise((resolve) =>
        child.on('exit', (code) => {
          if (tail.trim()) ctx.log.info(`rank ${rank}: ${tail}`);
          resolve(code);
        }),
      ),
    );
    children.push(child);
  }
  const kill = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  // Also fires when the stage was cancelled while the ranks were being started.
  const killOnAbort = addAbortListener(ctx.signal, kill);
  let comm: Communicator;
  try {
    // A rank that dies before joining fails the start at once instead of at the join timeout.
    comm = await Promise.race([
      ready,
      ...exits.map((e, i) =>
        e.then((code) => Promise.reject(new Error(`data-parallel rank ${i + 1} exited (code ${code}) before joining; its log lines above say why`))),
      ),
    ]);
  } catch (err) {
    kill();
    server.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    comm,
    async stop(ok: boolean) {
      await comm.close();
      if (!ok) kill();
      const codes = await Promise.all(exits);
      killOnAbort[Symbol.dispose]();
      await rm(dir, { recursive: true, force: true });
      const bad = codes.map((c, i) => [i + 1, c] as const).filter(([, c]) => c !== 0);
      if (ok && bad.length)
        throw new Error(`data-parallel rank ${bad.map(([r, c]) => `${r} (exit ${c})`).join(', ')} failed after rank 0 finished; see the rank's log lines`);
    },
  };
}
