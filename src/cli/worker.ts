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
  return runWorker(argv[0]!);
}
