// `smke kinds [KIND]`: the registered stage kinds, from their schemas.
import { Command } from './commander.js';
import { kindText } from '../compiler/kind-docs.js';
import { didYouMean } from '../compiler/suggest.js';
import { parseArgs } from './args.js';

export default async function kindsCommand(argv: string[]): Promise<number> {
  const program = new Command('smke kinds')
    .description('List the stage kinds, or describe one: parameters, defaults and outputs')
    .argument('[kind]', 'a kind to describe');
  const early = parseArgs(program, argv);
  if (early !== undefined) return early;
  const { registry } = await import('../stages/registry.js');
  const reg = registry();
  const wanted = program.args[0];
  if (wanted === undefined) {
    const kinds = reg.all();
    const width = Math.max(4, ...kinds.map((k) => k.name.length));
    for (const k of kinds) process.stdout.write(`${k.name.padEnd(width)}  ${k.summary}\n`);
    process.stdout.write(`\nRun 'smke kinds KIND' for a kind's parameters and outputs.\n`);
    return 0;
  }
  const kind = reg.get(wanted);
  if (!kind) {
    const hint = didYouMean(wanted, reg.names());
    process.stderr.write(`smke kinds: unknown kind '${wanted}'.${hint ? ` ${hint[0]!.toUpperCase()}${hint.slice(1)}` : ''} Run 'smke kinds' for the list.\n`);
    return 1;
  }
  process.stdout.write(kindText(kind));
  return 0;
}
