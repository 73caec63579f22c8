// A diagnostic: one error or warning with its stable code and source spans.
// Rendering (rustc-style text, JSON) lives in ./render-diagnostics.ts.

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

/**
 * Errors kept per compile. Past this many the rest are only counted: a
 * generated file with 20,000 misspelt names would otherwise spend minutes
 * on a did-you-mean over every name for each (callers check `full` before
 * computing one), and nobody reads the 20,000th error.
 */
export const MAX_ERRORS = 100;

/** Collects the diagnostics of one compile. */
export class Diagnostics {
  readonly list: Diagnostic[] = [];
  /** Errors not kept because MAX_ERRORS were already kept. */
  dropped = 0;
  /** (code, offset, message) already reported: a matrix stage would otherwise repeat one error per cell. */
  private readonly seen = new Set<string>();

  error(code: string, message: string, span: SourceSpan | undefined, extra: Omit<Diagnostic, 'code' | 'severity' | 'message' | 'span'> = {}): void {
    const key = `${code}\0${span?.file ?? ''}\0${span?.offset ?? -1}\0${message}`;
    if (this.seen.has(key)) return;
    if (this.full) {
      this.dropped++;
      return;
    }
    this.seen.add(key);
    const d: Diagnostic = { code, severity: 'error', message };
    if (span) d.span = span;
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) (d as unknown as Record<string, unknown>)[k] = v;
    this.list.push(d);
  }

  add(d: Diagnostic): void {
    this.error(d.code, d.message, d.span, { label: d.label, labels: d.labels, help: d.help, notes: d.notes });
  }

  /** MAX_ERRORS errors are kept: skip work (suggestions) that only a kept error would show. */
  get full(): boolean {
    return this.list.length >= MAX_ERRORS;
  }

  /** `list` in the order given, with a note on its last error when some errors were not kept. */
  noteDropped(list: Diagnostic[]): Diagnostic[] {
    const last = list[list.length - 1];
    if (this.dropped > 0 && last) {
      last.notes = [...(last.notes ?? []), `${this.dropped} more error${this.dropped === 1 ? '' : 's'} not shown: only the first ${MAX_ERRORS} are reported`];
    }
    return list;
  }

  get hasErrors(): boolean {
    return this.list.some((d) => d.severity === 'error');
  }
}
