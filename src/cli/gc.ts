// `smke gc`: remove store entries no recorded run refers to.
import { Command, CommanderError } from 'commander';
import { intArg } from './run.js';

export default async function gcCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke gc')
    .description('Remove store entries no recorded run refers to (with --keep-last N: not used by the last N runs)')
    .option('--keep-last <n>', 'keep only entries used by the last N runs', intArg('--keep-last', 1))
    .option('-n, --dry-run', 'list what would be removed')
    .option('--store <dir>', 'store directory (default: .smke/store, or $SMKE_STORE)')
    .exitOverride();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const o = cmd.opts<{ keepLast?: number; dryRun?: boolean; store?: string }>();
  const { gcCli } = await import('../runtime/commands.js');
  return gcCli({ keepLast: o.keepLast, dryRun: o.dryRun === true, store: o.store ?? process.env.SMKE_STORE });
}
