// `smke history`: past runs and their stage attempts.
import { Command } from './commander.js';
import { intArg, parseArgs } from './args.js';

export default async function historyCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke history')
    .description('List past runs (newest first) and their stage attempts')
    .option('-n, --limit <n>', 'how many runs', intArg('--limit', 1), 10)
    .option('--json', 'one JSON object per run')
    .option(
      '--metrics [patterns...]',
      "each run's final metrics: those matching the patterns (`*` is a wildcard: 'eval*.top1'), or the headline (the last stages' metrics)",
    );
  const stop = parseArgs(cmd, argv, 'smke history');
  if (stop !== undefined) return stop;
  const o = cmd.opts<{ limit: number; json?: boolean; metrics?: string[] | true }>();
  const { historyCli } = await import('../runtime/cli-commands.js');
  return historyCli({ limit: o.limit, json: o.json, metrics: o.metrics === true ? [] : o.metrics });
}
