// Entry point of a data-parallel child rank (started by ./ranks.ts): joins
// rank 0's group and runs its share of the stage. Logs go to stderr, which
// rank 0 relays into the stage's log; metrics and progress are rank 0's.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectRank } from '../../ml/data-parallel.js';
import type { StageContext } from '../stage-kind.js';
import type { RankJob } from './ranks.js';
import { runSmke } from './s-smke-run.js';

async function main(file: string): Promise<void> {
  const job = JSON.parse(await readFile(file, 'utf8')) as RankJob;
  const comm = await connectRank(job.socket, job.rank, job.world);
  const ac = new AbortController();
  process.once('SIGTERM', () => ac.abort(new Error('stopped by rank 0')));
  const say = (lvl: string) => (m: string) => process.stderr.write(`${lvl}: ${m}\n`);
  // Child ranks write no results: a private directory stands in for the output directory.
  const outDir = await mkdtemp(join(tmpdir(), `smke-rank${job.rank}-`));
  const ctx: StageContext = {
    instance: job.instance,
    stage: job.instance,
    key: '',
    outDir,
    scratchDir: job.scratchDir,
    projectDir: job.projectDir,
    attempt: 1,
    seed: job.seed,
    resources: { cpus: 1, gpus: 1, memBytes: 0, timeSeconds: 0, gpuIds: [0] },
    log: { debug: () => {}, info: say('info'), warn: say('warn'), error: say('error') },
    progress: () => {},
    metric: () => {},
    signal: ac.signal,
  };
  if (job.backend) ctx.backend = job.backend;
  try {
    await runSmke(ctx, job.params, comm);
  } finally {
    await comm.close();
    await rm(outDir, { recursive: true, force: true });
  }
}

main(process.argv[2]!).then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`error: ${err.message}\n`);
    process.exit(1);
  },
);
