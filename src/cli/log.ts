// `smke log STAGE`: the log of a stage's latest attempt.
import { Command, CommanderError } from 'commander';

export default async function logCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke log')
    .description("Print the log of a stage's latest attempt")
    .argument('<stage>', 'a stage name or an instance id such as glue[cola]')
    .exitOverride();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const { logCli } = await import('../runtime/commands.js');
  return logCli({ stage: cmd.args[0]! });
}
