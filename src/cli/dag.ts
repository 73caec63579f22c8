// `smke dag FILE`: the instance graph as dot, Mermaid or JSON.
import { Command } from './commander.js';
import { toDot, toJson, toMermaid } from '../compiler/dag-export.js';
import { collect, parseArgs, readSetOptions } from './args.js';
import { checkFormat, compileForCli } from './compile.js';

export default async function dagCommand(argv: string[]): Promise<number> {
  const program = new Command('smke dag')
    .description('Print the instance graph with kinds and key parameters')
    .argument('<file>', 'the .smke file')
    .option('--format <format>', 'dot (Graphviz), mermaid or json', 'dot')
    .option('--profile <name>', 'profile to select')
    .option('--set <name=value>', 'override a pipeline parameter (repeatable)', collect, []);
  const early = parseArgs(program, argv);
  if (early !== undefined) return early;
  const opts = program.opts<{ format?: string; profile?: string; set: string[] }>();
  const format = checkFormat('dag', opts.format, ['dot', 'mermaid', 'json'] as const, 'dot');
  if (!format) return 2;
  const set = readSetOptions('smke dag', opts.set);
  if (!set) return 2;
  const { plan, exitCode } = await compileForCli(program.args[0]!, { profile: opts.profile, set: set.set });
  if (!plan) return exitCode;
  process.stdout.write(format === 'dot' ? toDot(plan) : format === 'mermaid' ? toMermaid(plan) : toJson(plan));
  return 0;
}
