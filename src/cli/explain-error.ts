// `smke explain-error E0xxx`: the entry for a diagnostic code from docs/errors.md.
import { readFileSync } from 'node:fs';
import { Command } from './commander.js';
import { didYouMean } from '../compiler/suggest.js';
import { parseArgs } from './args.js';

/** Code -> its section of docs/errors.md (heading included). */
export function errorEntries(markdown: string): Map<string, string> {
  const entries = new Map<string, string>();
  const parts = markdown.split(/^(?=## E\d{4}\b)/m).slice(1);
  for (const part of parts) entries.set(part.slice(3, 8), part.trimEnd());
  return entries;
}

export default async function explainErrorCommand(argv: string[]): Promise<number> {
  const program = new Command('smke explain-error')
    .description('Explain a diagnostic code, with an example and the fix')
    .argument('<code>', 'a code such as E0008');
  const early = parseArgs(program, argv);
  if (early !== undefined) return early;
  const raw = program.args[0]!.trim().toUpperCase();
  const digits = /^E?(\d{1,4})$/.exec(raw);
  const code = digits ? `E${digits[1]!.padStart(4, '0')}` : raw;
  const entries = errorEntries(readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8'));
  const entry = entries.get(code);
  if (!entry) {
    const hint = didYouMean(code, entries.keys());
    process.stderr.write(
      `smke explain-error: no diagnostic code '${raw}'.${hint ? ` ${hint[0]!.toUpperCase()}${hint.slice(1)}` : ''} The codes are ${[...entries.keys()][0]} to ${[...entries.keys()].pop()}.\n`,
    );
    return 1;
  }
  process.stdout.write(`${entry}\n`);
  return 0;
}
