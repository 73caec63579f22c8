// The compiler's public entry: .smke text in, a checked Plan (or diagnostics) out.
// The runtime and CLI import only from this file, ./plan.js and ./kind-catalog.js.

import { build } from './build.js';
import type { Diagnostic } from './diagnostic.js';
import { formatFile } from './formatter.js';
import type { KindCatalog } from './kind-catalog.js';
import { parse } from './parser.js';
import type { Plan } from './plan.js';
import { SourceFile } from './source.js';

export type { Plan, StageInstance, Value, OutputRef, Resources, SourceSpan } from './plan.js';
export type { KindCatalog, KindInfo, OutputSpec, JsonSchema } from './kind-catalog.js';
export type { Diagnostic, DiagnosticLabel } from './diagnostic.js';

export interface CompileOptions {
  /** Path of the root .smke file. */
  file: string;
  /** Profile to select; the pipeline's default profile when absent. */
  profile?: string;
  /** `--set name=value` overrides, values as typed on the command line. */
  set?: Record<string, string>;
  /** The stage kinds (src/stages registry). */
  catalog: KindCatalog;
  /** Project directory (default: process.cwd()). */
  projectDir?: string;
  /** Text of the root file, when the caller has it (an editor's unsaved buffer, a test); else it is read from `file`. */
  text?: string;
  /** Environment for `env(...)` (default: process.env). */
  env?: Record<string, string | undefined>;
}

export interface CompileResult {
  /** Present when there are no errors. */
  plan?: Plan;
  diagnostics: Diagnostic[];
  /** Text of every file read, by the path diagnostics use, so they can be rendered with their source lines. */
  texts?: Map<string, string>;
}

/**
 * Compiles a pipeline. Never throws for any input file: every problem,
 * including an unreadable file, is a diagnostic.
 */
export function compile(options: CompileOptions): CompileResult {
  return build(options);
}

export { renderDiagnostics, diagnosticsJson } from './render-diagnostics.js';
export { parseLiteral } from './literal-text.js';
export { readSource } from './load-sources.js';
export { normalizeSource } from './source.js';

/**
 * The canonical layout of one file's text, or its syntax errors (a file that
 * does not parse is never rewritten).
 */
export function formatSource(path: string, text: string): { formatted: string } | { diagnostics: Diagnostic[] } {
  const src = new SourceFile(path, text);
  const { ast, diagnostics } = parse(src);
  if (diagnostics.length > 0) return { diagnostics };
  return { formatted: formatFile(ast, src.text) };
}
