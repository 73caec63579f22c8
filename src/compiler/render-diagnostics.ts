// Diagnostics as people and editors read them: rustc-style text (code, place,
// source line, carets under the span, labels, help) and JSON.

import type { Diagnostic } from './diagnostic.js';
import type { SourceSpan } from './plan.js';

export interface RenderOptions {
  /** ANSI colours (only on a TTY, never with NO_COLOR: the caller decides). */
  color?: boolean;
}

const ANSI = { red: '31', yellow: '33', blue: '34', cyan: '36', bold: '1' } as const;

/** Longest source line shown; longer lines are cut to a window around the span. */
const MAX_LINE = 160;

interface Mark {
  span: SourceSpan;
  message: string;
  primary: boolean;
}

export function renderDiagnostics(diags: Diagnostic[], texts: Map<string, string>, opts: RenderOptions = {}): string {
  const out = diags.map((d) => renderOne(d, texts, opts));
  const errors = diags.filter((d) => d.severity === 'error').length;
  if (errors > 0) out.push(paint(opts, ANSI.bold, `${paint(opts, ANSI.red, 'error')}: could not compile: ${errors} error${errors === 1 ? '' : 's'}`) + '\n');
  return out.join('\n');
}

function paint(opts: RenderOptions, code: string, text: string): string {
  return opts.color ? `\x1b[${code}m${text}\x1b[0m` : text;
}

function renderOne(d: Diagnostic, texts: Map<string, string>, opts: RenderOptions): string {
  const sevColor = d.severity === 'error' ? ANSI.red : ANSI.yellow;
  const lines: string[] = [];
  lines.push(`${paint(opts, ANSI.bold, paint(opts, sevColor, `${d.severity}[${d.code}]`))}${paint(opts, ANSI.bold, `: ${d.message}`)}`);
  const marks: Mark[] = [];
  if (d.span) marks.push({ span: d.span, message: d.label ?? '', primary: true });
  for (const l of d.labels ?? []) marks.push({ span: l.span, message: l.message, primary: false });
  const lineNos = marks.map((m) => m.span.line);
  const gutter = String(Math.max(1, ...lineNos)).length;
  const pad = ' '.repeat(gutter);
  const bar = paint(opts, ANSI.blue, '|');

  // Group marks by file, the primary's file first, each file's lines in order.
  const files: string[] = [];
  for (const m of marks) if (!files.includes(m.span.file)) files.push(m.span.file);
  files.forEach((file, fi) => {
    const fileMarks = marks.filter((m) => m.span.file === file).sort((a, b) => a.span.line - b.span.line || a.span.column - b.span.column);
    const anchor = fileMarks.find((m) => m.primary) ?? fileMarks[0]!;
    lines.push(`${pad}${paint(opts, ANSI.blue, fi === 0 ? '-->' : ':::')} ${file}:${anchor.span.line}:${anchor.span.column}`);
    lines.push(`${pad} ${bar}`);
    const text = texts.get(file);
    let lastLine = -1;
    for (const m of fileMarks) {
      if (text === undefined) break;
      const src = sourceLine(text, m.span.offset);
      if (m.span.line !== lastLine) {
        if (lastLine !== -1 && m.span.line > lastLine + 1) lines.push(paint(opts, ANSI.blue, '...'));
        lines.push(`${paint(opts, ANSI.blue, String(m.span.line).padStart(gutter))} ${bar} ${src.shown}`);
        lastLine = m.span.line;
      }
      const start = src.col;
      const width = Math.max(1, Math.min(m.span.length, src.shown.length - start));
      const carets = (m.primary ? '^' : '-').repeat(width);
      const color = m.primary ? sevColor : ANSI.blue;
      lines.push(`${pad} ${bar} ${' '.repeat(start)}${paint(opts, color, carets + (m.message ? ` ${m.message}` : ''))}`);
    }
  });
  if (marks.length > 0 && (d.help || d.notes?.length)) lines.push(`${pad} ${bar}`);
  for (const n of d.notes ?? []) lines.push(`${pad} ${paint(opts, ANSI.blue, '=')} ${paint(opts, ANSI.bold, 'note')}: ${n}`);
  if (d.help) lines.push(`${pad} ${paint(opts, ANSI.blue, '=')} ${paint(opts, ANSI.bold, 'help')}: ${d.help}`);
  return lines.join('\n') + '\n';
}

/** The line containing `offset`, tabs shown as spaces, cut around the offset when very long; `col` is the offset's 0-based place in `shown`. */
function sourceLine(text: string, offset: number): { shown: string; col: number } {
  // lastIndexOf clamps a negative start to 0: at offset 0 it would find a newline *at* 0.
  const from = offset <= 0 ? 0 : text.lastIndexOf('\n', offset - 1) + 1;
  let to = text.indexOf('\n', offset);
  if (to === -1) to = text.length;
  if (to > from + 100_000) to = Math.min(to, offset + MAX_LINE);
  let line = text.slice(from, to).replace(/\r$/, '');
  let col = offset - from;
  if (line.length > MAX_LINE) {
    const start = Math.max(0, Math.min(col - 40, line.length - MAX_LINE));
    const cut = line.slice(start, start + MAX_LINE);
    line = (start > 0 ? '...' : '') + cut + (start + MAX_LINE < line.length ? '...' : '');
    col = col - start + (start > 0 ? 3 : 0);
  }
  // Control characters would garble the terminal; tabs would break caret alignment.
  // eslint-disable-next-line no-control-regex -- control characters would garble the caret line
  const shown = line.replace(/[\x00-\x1f\x7f]/g, ' ');
  return { shown, col: Math.max(0, Math.min(col, shown.length)) };
}

/** Diagnostics for editors: one JSON document with the spans' end positions added. */
export function diagnosticsJson(diags: Diagnostic[]): { diagnostics: unknown[]; errors: number } {
  return {
    errors: diags.filter((d) => d.severity === 'error').length,
    diagnostics: diags.map((d) => ({
      code: d.code,
      severity: d.severity,
      message: d.message,
      ...(d.span ? { span: d.span } : {}),
      ...(d.label ? { label: d.label } : {}),
      labels: d.labels ?? [],
      ...(d.help ? { help: d.help } : {}),
      notes: d.notes ?? [],
    })),
  };
}
