// `smke status FILE`: every instance, cached or why it will run.
import { Command } from './commander.js';
import { collect, parseArgs, readSetOptions } from './args.js';
import { compileLazily } from './run.js';

export default async function statusCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke status')
    .description('Show every stage instance: cached, or will run and why')
    .argument('<file>', 'the .smke pipeline')
    .option('--profile <name>', 'profile to use')
    .option('--set <name=value>', 'override a pipeline parameter (repeatable)', collect, [])
    .option('--store <dir>', 'store directory (default: .smke/store, or $SMKE_STORE)')
    .option('--json', 'one JSON object per instance');
  const stop = parseArgs(cmd, argv, 'smke status');
  if (stop !== undefined) return stop;
  const o = cmd.opts<{ profile?: string; set: string[]; store?: string; json?: boolean }>();
  const set = readSetOptions('smke status', o.set);
  if (!set) return 2;
  const { statusCli } = await import('../runtime/cli-commands.js');
  return statusCli({ file: cmd.args[0]!, profile: o.profile, set: set.set, store: o.store ?? process.env.SMKE_STORE, json: o.json, compile: compileLazily });
}
