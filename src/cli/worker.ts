// `smke worker JOB.json`: run one stage job; `smke worker --serve`: a pooled
// worker taking jobs on stdin. Both are started by executors, not by people.
export default async function workerCommand(argv: string[]): Promise<number> {
  if (argv.length === 1 && argv[0] === '--serve') {
    const { serveWorker } = await import('../runtime/job-worker.js');
    return serveWorker();
  }
  if (argv.length !== 1 || argv[0]!.startsWith('-')) {
    process.stderr.write('usage: smke worker JOB.json | smke worker --serve (internal: executors start it)\n');
    return 2;
  }
  const { runWorker } = await import('../runtime/job-worker.js');
  const code = await runWorker(argv[0]!);
  // The job is finished and recorded (final event written, lock released). A handle a stage kind left
  // open (a keep-alive socket, a timer, a thread pool) must not keep the process alive: the executor
  // waits for it, and a cancelled Slurm job would run on until Slurm's SIGKILL.
  process.exit(code);
}
