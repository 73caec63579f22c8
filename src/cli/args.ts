// Argument-parsing helpers shared by every command. Kept apart from
// compile.ts (which loads the compiler) and run.ts, so that a command that
// only parses arguments loads nothing else.
import { type Command, CommanderError } from 'commander';

/** commander's collector for a repeatable option: `.option('--set <k=v>', '...', collect, [])`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A commander argument parser for an integer option of at least `min`; a bad value is a usage error. */
export function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new CommanderError(2, 'smke.usage', `${name} expects an integer >= ${min}, got '${v}'`);
    return n;
  };
}

/**
 * Parses a command's arguments with commander set up not to exit the process.
 * Returns undefined when the command should go on, or the exit code to return
 * now: 0 after --help, 2 on a usage error (commander has printed its own;
 * ours, from intArg, are printed here with the command's name).
 */
export function parseArgs(cmd: Command, argv: string[], name = cmd.name()): number | undefined {
  cmd.exitOverride();
  try {
    cmd.parse(argv, { from: 'user' });
    return undefined;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'smke.usage') process.stderr.write(`${name}: ${e.message}\n`);
      return e.exitCode === 0 ? 0 : 2;
    }
    throw e;
  }
}
