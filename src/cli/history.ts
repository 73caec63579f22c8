// `smke history`: past runs and their stage attempts.
import { Command, CommanderError } from 'commander';
import { intArg } from './run.js';

export default async function historyCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke history')
    .description('List past runs (newest first) and their stage attempts')
    .option('-n, --limit <n>', 'how many runs', intArg('--limit', 1), 10)
    .option('--json', 'one JSON object per run')
    .exitOverride();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const o = cmd.opts<{ limit: number; json?: boolean }>();
  const { historyCli } = await import('../runtime/commands.js');
  return historyCli({ limit: o.limit, json: o.json });
}
