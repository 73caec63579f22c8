// `smke diff [RUN_A] [RUN_B]`: what changed between two recorded runs.
import { Command } from './commander.js';
import { intArg, parseArgs } from './args.js';

export default async function diffCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke diff')
    .description('Compare two runs: which instances changed and why, and every metric that differs (default: the last two runs)')
    .argument('[runA]', 'the earlier run (smke history lists them); alone: compare this run with the one before it', intArg('RUN_A', 1))
    .argument('[runB]', 'the later run', intArg('RUN_B', 1))
    .option('--json', 'the comparison as one JSON document')
    .option('--html <file>', "also write run B's report beside run A's, with the earlier value and the change of every row (docs/report.md)");
  const stop = parseArgs(cmd, argv, 'smke diff');
  if (stop !== undefined) return stop;
  const [runA, runB] = cmd.processedArgs as [number | undefined, number | undefined];
  const { diffCli } = await import('../runtime/cli-commands.js');
  const o = cmd.opts<{ json?: boolean; html?: string }>();
  return diffCli({ runA, runB, json: o.json, html: o.html });
}
