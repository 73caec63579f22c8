// `smke gc`: remove store entries no recorded run refers to.
import { Command } from './commander.js';
import { intArg, parseArgs } from './args.js';

export default async function gcCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke gc')
    .description('Remove store entries no recorded run refers to (with --keep-last N: not used by the last N runs)')
    .option('--keep-last <n>', 'keep only entries used by the last N runs', intArg('--keep-last', 1))
    .option(
      '--unrecorded',
      'also remove entries older than the state database that no run it recorded used (after it was lost or rebuilt); never those results/ links to',
    )
    .option('-n, --dry-run', 'list what would be removed')
    .option('--store <dir>', 'store directory (default: .smke/store, or $SMKE_STORE)')
    .option('--remote [url]', 'collect the remote cache instead (default: the configured one): entries older than --keep-days')
    .option('--keep-days <n>', 'with --remote: keep entries uploaded in the last N days', intArg('--keep-days', 0), 30);
  const stop = parseArgs(cmd, argv, 'smke gc');
  if (stop !== undefined) return stop;
  const o = cmd.opts<{ keepLast?: number; dryRun?: boolean; store?: string; unrecorded?: boolean; remote?: string | true; keepDays: number }>();
  const { gcCli, remoteGcCli } = await import('../runtime/cli-commands.js');
  if (o.remote !== undefined) {
    return remoteGcCli({
      url: o.remote === true ? undefined : o.remote,
      keepDays: o.keepDays,
      dryRun: o.dryRun === true,
      store: o.store ?? process.env.SMKE_STORE,
    });
  }
  return gcCli({ keepLast: o.keepLast, dryRun: o.dryRun === true, unrecorded: o.unrecorded === true, store: o.store ?? process.env.SMKE_STORE });
}
