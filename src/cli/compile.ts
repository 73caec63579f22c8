// Shared by every command that reads a pipeline (check, dag, run, status,
// explain): compile a file against the stage registry and print its
// diagnostics, so all commands report errors the same way.

import { compile, diagnosticsJson, renderDiagnostics, type Plan } from '../compiler/index.js';

export interface CliCompileOptions {
  profile?: string;
  /** `--set` pairs, already split (see readSetOptions in ./args.ts). */
  set?: Record<string, string>;
  /** `text` (default): rustc-style on stderr; `json`: one JSON document on stdout. */
  format?: 'text' | 'json';
  /** Project directory; default process.cwd(). */
  projectDir?: string;
  /** Print the JSON document even when there is nothing to report (for `smke check --format json`). */
  alwaysJson?: boolean;
}

export interface CliCompileResult {
  plan?: Plan;
  /** 0 when the plan compiled (warnings only), 1 on errors. */
  exitCode: number;
}

/** Whether stderr may carry colour: a terminal, and NO_COLOR unset or empty (https://no-color.org). */
export function useColor(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

export async function compileForCli(file: string, options: CliCompileOptions = {}): Promise<CliCompileResult> {
  const { registry } = await import('../stages/registry.js');
  const result = compile({
    file,
    profile: options.profile,
    set: options.set,
    catalog: registry(),
    projectDir: options.projectDir,
  });
  if (options.format === 'json') {
    if (result.diagnostics.length > 0 || options.alwaysJson) process.stdout.write(`${JSON.stringify(diagnosticsJson(result.diagnostics), null, 2)}\n`);
  } else if (result.diagnostics.length > 0) {
    process.stderr.write(renderDiagnostics(result.diagnostics, result.texts ?? new Map(), { color: useColor() }));
  }
  return { plan: result.plan, exitCode: result.plan ? 0 : 1 };
}

/** Reads `--format` against the allowed values; prints a usage error and returns undefined when it is not one. */
export function checkFormat<T extends string>(command: string, value: string | undefined, allowed: readonly T[], fallback: T): T | undefined {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  process.stderr.write(`smke ${command}: --format must be one of ${allowed.join(', ')}, got '${value}'\n`);
  return undefined;
}
