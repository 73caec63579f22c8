// Argument-parsing helpers shared by every command. Kept apart from
// compile.ts (which loads the compiler) and run.ts, so that a command that
// only parses arguments loads nothing else.
import { type Command, CommanderError } from './commander.js';

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

/**
 * Splits repeated `--set name=value` options. Returns an error message for a
 * malformed one (the caller prints it and exits 2, a usage error). A later
 * `--set` of the same name wins.
 */
function parseSetOptions(pairs: string[] | undefined): { set: Record<string, string> } | { error: string } {
  const set: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? '' : pair.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      return { error: `--set expects name=value (a pipeline parameter and its value), got '${pair}'` };
    }
    set[name] = pair.slice(eq + 1);
  }
  return { set };
}

/**
 * `--set` options for a command: the overrides (undefined when there are
 * none), or null after printing the usage error (the caller exits 2).
 */
export function readSetOptions(command: string, pairs: string[] | undefined): { set: Record<string, string> | undefined } | null {
  const parsed = parseSetOptions(pairs);
  if ('error' in parsed) {
    process.stderr.write(`${command}: ${parsed.error}\n`);
    return null;
  }
  return { set: Object.keys(parsed.set).length ? parsed.set : undefined };
}
