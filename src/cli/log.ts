// `smke log STAGE`: the log of a stage's latest attempt.
import { Command } from './commander.js';
import { parseArgs } from './args.js';

export default async function logCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke log')
    .description("Print the log of a stage's latest attempt")
    .argument('<stage>', 'a stage name or an instance id such as glue[cola]');
  const stop = parseArgs(cmd, argv, 'smke log');
  if (stop !== undefined) return stop;
  const { logCli } = await import('../runtime/cli-commands.js');
  return logCli({ stage: cmd.args[0]! });
}
