// A diagnostic: one error or warning with its stable code and source spans.
// Rendering (rustc-style text, JSON) lives in ./render.ts.

import type { SourceSpan } from './plan.js';

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

/** Collects the diagnostics of one compile. */
export class Diagnostics {
  readonly list: Diagnostic[] = [];
  /** (code, offset, message) already reported: a matrix stage would otherwise repeat one error per cell. */
  private readonly seen = new Set<string>();

  error(code: string, message: string, span: SourceSpan | undefined, extra: Omit<Diagnostic, 'code' | 'severity' | 'message' | 'span'> = {}): void {
    const key = `${code}\0${span?.file ?? ''}\0${span?.offset ?? -1}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const d: Diagnostic = { code, severity: 'error', message };
    if (span) d.span = span;
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) (d as unknown as Record<string, unknown>)[k] = v;
    this.list.push(d);
  }

  add(d: Diagnostic): void {
    this.error(d.code, d.message, d.span, { label: d.label, labels: d.labels, help: d.help, notes: d.notes });
  }

  get hasErrors(): boolean {
    return this.list.some((d) => d.severity === 'error');
  }
}
