// `smke verify`: re-digest every store entry against its manifest.
import { Command } from './commander.js';
import { parseArgs } from './args.js';

export default async function verifyCommand(argv: string[]): Promise<number> {
  const cmd = new Command('smke verify')
    .description('Re-digest store entries and report any whose outputs no longer match their manifest (exit 1 if any)')
    .option('--store <dir>', 'store directory (default: .smke/store, or $SMKE_STORE)')
    .option('--json', 'one JSON object per corrupted entry');
  const stop = parseArgs(cmd, argv, 'smke verify');
  if (stop !== undefined) return stop;
  const o = cmd.opts<{ store?: string; json?: boolean }>();
  const { verifyCli } = await import('../runtime/cli-commands.js');
  return verifyCli({ store: o.store ?? process.env.SMKE_STORE, json: o.json });
}
