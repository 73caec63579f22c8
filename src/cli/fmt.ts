// `smke fmt FILE... [--check]`: rewrite .smke files in the canonical layout.
import { writeFileSync } from 'node:fs';
import { Command } from './commander.js';
import { formatSource, normalizeSource, readSource } from '../compiler/index.js';
import { parseArgs } from './args.js';
import { useColor } from './compile.js';
import { renderDiagnostics } from '../compiler/index.js';

export default async function fmtCommand(argv: string[]): Promise<number> {
  const program = new Command('smke fmt')
    .description('Format .smke files canonically (in place)')
    .argument('<files...>', 'the .smke files')
    .option('--check', 'change nothing; list the files that are not formatted and exit 1 if any');
  const early = parseArgs(program, argv);
  if (early !== undefined) return early;
  const check = program.opts<{ check?: boolean }>().check ?? false;
  let status = 0;
  for (const file of program.args) {
    const read = readSource(file);
    if ('error' in read) {
      process.stderr.write(`smke fmt: cannot read ${file}: ${read.error}\n`);
      status = Math.max(status, 1);
      continue;
    }
    const text = read.text;
    const result = formatSource(file, text);
    if (!('formatted' in result)) {
      process.stderr.write(renderDiagnostics(result.diagnostics, new Map([[file, normalizeSource(text)]]), { color: useColor() }));
      process.stderr.write(`smke fmt: ${file} left unchanged: fix its syntax errors first\n`);
      status = Math.max(status, 1);
      continue;
    }
    if (result.formatted === text) continue;
    if (check) {
      process.stdout.write(`${file}\n`);
      status = Math.max(status, 1);
    } else {
      writeFileSync(file, result.formatted);
      process.stderr.write(`formatted ${file}\n`);
    }
  }
  return status;
}
