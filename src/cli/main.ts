// The CLI entry: picks the command and loads only that command's module, so
// `smke status` never pays for tfjs or sharp. Each command lives in its own
// file (src/cli/<command>.ts), parses its own arguments and returns an exit code.

import { readFileSync } from 'node:fs';

type CommandModule = { default: (argv: string[]) => Promise<number> };

interface CommandEntry {
  summary: string;
  load: () => Promise<CommandModule>;
  /** Internal commands are not listed in `smke --help`. */
  hidden?: boolean;
}

const COMMANDS: Record<string, CommandEntry> = {
  run: { summary: 'Run a pipeline: everything not already in the store', load: () => import('./run.js') },
  status: { summary: 'Show every stage instance: cached, or why it will run', load: () => import('./status.js') },
  explain: { summary: "Show a stage's fingerprint parts and which changed since its last run", load: () => import('./explain.js') },
  check: { summary: 'Compile a pipeline and print its diagnostics', load: () => import('./check.js') },
  dag: { summary: 'Print the instance graph (dot, mermaid or json)', load: () => import('./dag.js') },
  fmt: { summary: 'Format .smke files canonically', load: () => import('./fmt.js') },
  kinds: { summary: 'List the stage kinds with their parameters and outputs', load: () => import('./kinds.js') },
  log: { summary: "Print a stage's log from its last run", load: () => import('./log.js') },
  history: { summary: 'List past runs and their stage attempts', load: () => import('./history.js') },
  diff: { summary: 'Compare two runs: changed instances and why, and the metrics that differ', load: () => import('./diff.js') },
  gc: { summary: 'Remove store entries no recorded run refers to', load: () => import('./gc.js') },
  verify: { summary: 'Re-digest store entries and report any that no longer match', load: () => import('./verify.js') },
  lsp: { summary: 'Serve the Language Server Protocol on stdio (for editors)', load: () => import('./lsp.js') },
  'explain-error': { summary: 'Explain a diagnostic code (e.g. E0003)', load: () => import('./explain-error.js') },
  worker: { summary: 'Run one stage job (used by executors)', load: () => import('./worker.js'), hidden: true },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS)
    .filter(([, c]) => !c.hidden)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['Usage: smke <command> [options]', '', 'Commands:', ...lines, '', "Run 'smke <command> --help' for a command's options.", ''].join('\n');
}

/** Edit distance, for suggesting a command name. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/**
 * A reader that went away (`smke kinds | head`) is not an error of the
 * command: later output is dropped and the command ends as it would have.
 * Without this, the first write after the pipe closed throws EPIPE as an
 * unhandled 'error' event.
 */
function dropOutputWhenClosed(stream: NodeJS.WriteStream): void {
  stream.on('error', () => {
    stream.write = (() => true) as typeof stream.write;
  });
}

export async function main(argv: string[]): Promise<number> {
  dropOutputWhenClosed(process.stdout);
  dropOutputWhenClosed(process.stderr);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    const best = Object.keys(COMMANDS)
      .map((c) => [c, distance(name, c)] as const)
      .sort((x, y) => x[1] - y[1])[0];
    const hint = best && best[1] <= 2 ? ` Did you mean '${best[0]}'?` : '';
    process.stderr.write(`smke: unknown command '${name}'.${hint} Run 'smke --help' for the list.\n`);
    return 2;
  }
  // A no-op run's stat check, begun before the command's modules load (src/runtime/early-check.ts).
  if (name === 'run') (await import('../runtime/early-check.js')).startRunEarlyCheck(process.cwd(), rest);
  const mod = await entry.load();
  try {
    return await mod.default(rest);
  } catch (e) {
    // A full disk, a damaged database, a path replaced by something else: a message and exit 1.
    // Anything else is a bug in smke and goes on to bin/smke.js (exit 70, with the stack).
    const { describeFault } = await import('../runtime/faults.js');
    const message = describeFault(e);
    if (message === undefined) throw e;
    process.stderr.write(`smke ${name}: ${message}\n`);
    return 1;
  }
}
