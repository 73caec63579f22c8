// `smke explain FILE STAGE`: every fingerprint part, and which differ from the last run.
import { Command } from './commander.js';
import { collect, parseArgs, readSetOptions } from './args.js';
import { compileLazily } from './run.js';

export default async function explainCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke explain')
    .description("Show a stage's fingerprint parts and which changed since its last run")
    .argument('<file>', 'the .smke pipeline')
    .argument('<stage>', 'a stage name (all its matrix cells) or an instance id such as glue[cola]')
    .option('--profile <name>', 'profile to use')
    .option('--set <name=value>', 'override a pipeline parameter (repeatable)', collect, [])
    .option('--store <dir>', 'store directory (default: .smke/store, or $SMKE_STORE)');
  const stop = parseArgs(cmd, argv, 'smke explain');
  if (stop !== undefined) return stop;
  const o = cmd.opts<{ profile?: string; set: string[]; store?: string }>();
  const set = readSetOptions('smke explain', o.set);
  if (!set) return 2;
  const { explainCli } = await import('../runtime/cli-commands.js');
  return explainCli({
    file: cmd.args[0]!,
    stage: cmd.args[1]!,
    profile: o.profile,
    set: set.set,
    store: o.store ?? process.env.SMKE_STORE,
    compile: compileLazily,
  });
}
