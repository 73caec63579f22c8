// `smke check FILE`: compile a pipeline and print its diagnostics.
import { Command } from './commander.js';
import { collect, parseArgs, readSetOptions } from './args.js';
import { checkFormat, compileForCli } from './compile.js';

export default async function checkCommand(argv: string[]): Promise<number> {
  const program = new Command('smke check')
    .description('Compile a pipeline and print its diagnostics (exit 1 on errors)')
    .argument('<file>', 'the .smke file')
    .option('--profile <name>', 'profile to select (default: the one marked default)')
    .option('--set <name=value>', 'override a pipeline parameter (repeatable)', collect, [])
    .option('--format <format>', 'text (rustc-style, on stderr) or json (on stdout, for editors)');
  const early = parseArgs(program, argv);
  if (early !== undefined) return early;
  const opts = program.opts<{ profile?: string; set: string[]; format?: string }>();
  const format = checkFormat('check', opts.format, ['text', 'json'] as const, 'text');
  if (!format) return 2;
  const set = readSetOptions('smke check', opts.set);
  if (!set) return 2;
  const { plan, exitCode } = await compileForCli(program.args[0]!, { profile: opts.profile, set: set.set, format, alwaysJson: true });
  if (plan && format === 'text') {
    const n = plan.instances.length;
    process.stderr.write(`ok: ${n} stage instance${n === 1 ? '' : 's'}${plan.profile ? ` (profile ${plan.profile})` : ''}\n`);
  }
  return exitCode;
}
