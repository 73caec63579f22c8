// `smke run FILE`: argument parsing only; the work is in src/runtime.
import { Command, Option } from './commander.js';
import { EXECUTORS } from '../compiler/plan.js';
import { collect, intArg, parseArgs, readSetOptions } from './args.js';

/** The compiler, imported only on a plan-cache miss: a no-op run loads neither chevrotain nor ajv. */
export async function compileLazily(file: string, o: { profile?: string; set?: Record<string, string>; projectDir: string }) {
  const { compileForCli } = await import('./compile.js');
  return compileForCli(file, o);
}

export default async function runCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke run')
    .description('Run a pipeline: every stage instance not already in the store')
    .argument('<file>', 'the .smke pipeline')
    .option('--profile <name>', 'profile to use (default: the pipeline default)')
    .option('--set <name=value>', 'override a pipeline parameter (repeatable)', collect, [])
    .option('-j, --jobs <n>', 'stages running at once (default: CPU count)', intArg('--jobs', 1))
    .option('-k, --keep-going', 'after a failure, go on with stages that do not depend on it')
    .option('-n, --dry-run', 'print what would run and why, run nothing')
    .option('--only <stage...>', 'run only these stages (and what they need)')
    .option('--force <stage...>', 'rerun these stages even if cached')
    .option('--store <dir>', 'store directory shared between projects (default: .smke/store, or $SMKE_STORE)')
    .option('--gpus <n>', 'GPUs the scheduler may hand out (default: detected)', intArg('--gpus', 0))
    .option('--backend <name>', 'tfjs backend for ML stages')
    .addOption(new Option('--executor <name>', 'where stages without `executor = ...` run (docs/slurm.md)').choices([...EXECUTORS]))
    .option('--json', 'print events as JSON lines')
    .addOption(new Option('--progress <style>', 'progress display').choices(['tty', 'plain']))
    .option('--no-plan-cache', 'always compile the pipeline')
    .option('--remote <url>', 'remote cache, s3://bucket/prefix (default: smke.json or $SMKE_REMOTE; docs/remote-cache.md)')
    .addOption(
      new Option('--remote-mode <mode>', 'what the run does with the remote cache (default: read-write)').choices(['read-write', 'pull', 'push', 'off']),
    );
  const stop = parseArgs(cmd, argv, 'smke run');
  if (stop !== undefined) return stop;
  const o = cmd.opts<{
    profile?: string;
    set: string[];
    jobs?: number;
    keepGoing?: boolean;
    dryRun?: boolean;
    only?: string[];
    force?: string[];
    store?: string;
    gpus?: number;
    backend?: string;
    executor?: string;
    json?: boolean;
    progress?: 'tty' | 'plain';
    planCache: boolean;
    remote?: string;
    remoteMode?: string;
  }>();
  const set = readSetOptions('smke run', o.set);
  if (!set) return 2;
  const { runCli } = await import('../runtime/cli-commands.js');
  return runCli({
    file: cmd.args[0]!,
    profile: o.profile,
    set: set.set,
    jobs: o.jobs,
    keepGoing: o.keepGoing === true,
    dryRun: o.dryRun === true,
    only: o.only,
    force: o.force,
    store: o.store ?? process.env.SMKE_STORE,
    gpus: o.gpus,
    backend: o.backend,
    executor: o.executor ?? process.env.SMKE_EXECUTOR,
    json: o.json === true,
    progress: o.progress,
    planCache: o.planCache,
    compile: compileLazily,
    remote: o.remote,
    remoteMode: o.remoteMode,
    argv,
  });
}
