// The compiler's public entry: .smke text in, a checked Plan (or diagnostics) out.
// Owned by the compiler issue. The runtime and CLI import only from this file,
// ./plan.js and ./kinds.js.

import type { KindCatalog } from './kinds.js';
import type { Plan, SourceSpan } from './plan.js';

export type { Plan, StageInstance, Value, OutputRef, Resources, SourceSpan } from './plan.js';
export type { KindCatalog, KindInfo, OutputSpec, JsonSchema } from './kinds.js';

export interface DiagnosticLabel {
  span: SourceSpan;
  message: string;
}

export interface Diagnostic {
  /** Stable code, e.g. `E0001`; documented in docs/errors.md. */
  code: string;
  severity: 'error' | 'warning';
  message: string;
  /** Primary location (absent only for errors without a source, e.g. a missing file given on the command line). */
  span?: SourceSpan;
  /** Label under the primary span. */
  label?: string;
  /** Secondary labelled spans. */
  labels?: DiagnosticLabel[];
  /** `help:` line, e.g. a did-you-mean. */
  help?: string;
  notes?: string[];
}

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
  /** Environment for `env(...)` (default: process.env). */
  env?: Record<string, string | undefined>;
}

export interface CompileResult {
  /** Present when there are no errors. */
  plan?: Plan;
  diagnostics: Diagnostic[];
}

export function compile(_options: CompileOptions): CompileResult {
  throw new Error('compiler: not implemented yet');
}
