// `smke worker JOB.json`: run one stage job (started by an executor, not by people).
export default async function workerCommand(argv: string[]): Promise<number> {
  if (argv.length !== 1 || argv[0]!.startsWith('-')) {
    process.stderr.write('usage: smke worker JOB.json (internal: executors start it)\n');
    return 2;
  }
  const { runWorker } = await import('../runtime/worker.js');
  return runWorker(argv[0]!);
}
