// `smke fmt`: the canonical layout of a parsed file. Comments are kept: each
// one is printed before the first element that follows it, or at the end of
// the line it trailed. Blank lines between elements are kept (at most one).
// Literals are printed as written, so the AST never changes, and every
// layout decision depends only on the AST and the comments, so formatting
// twice gives the same text as formatting once.

import type * as A from './ast.js';
import { SourceFile } from './source.js';
import type { SourceSpan } from './plan.js';

const INDENT = '  ';
/** Lists and maps that fit within this width stay on one line. */
const WIDTH = 100;

export function formatFile(ast: A.FileAst, text: string): string {
  return new Printer(ast, text).file();
}

class Printer {
  private readonly lines: string[] = [];
  private readonly comments: A.Comment[];
  private ci = 0;
  private readonly src: SourceFile;

  constructor(
    private readonly ast: A.FileAst,
    private readonly text: string,
  ) {
    this.comments = [...ast.comments].sort((a, b) => a.offset - b.offset);
    this.src = new SourceFile(ast.path, text);
  }

  file(): string {
    const first = this.ast.version?.span.offset ?? this.ast.items[0]?.span.offset ?? this.text.length;
    this.flushComments(first, '', false);
    if (this.ast.version) this.lines.push(`smke ${this.ast.version.value}`);
    this.ast.items.forEach((item, i) => {
      if (i === 0 && this.ast.version) this.blank();
      else if (i > 0) this.blankBefore(item.span.offset, true);
      this.item(item, '');
      this.trailing(item.span);
    });
    this.flushComments(this.text.length + 1, '', this.lines.length > 0);
    while (this.lines.length > 0 && this.lines[this.lines.length - 1] === '') this.lines.pop();
    return this.lines.join('\n') + '\n';
  }

  /** Own-line comments before `offset`, each preceded by a blank line where the source had one. */
  private flushComments(offset: number, indent: string, allowBlank: boolean, beforeElement = false): void {
    let flushed = false;
    while (this.ci < this.comments.length && this.comments[this.ci]!.offset < offset) {
      const c = this.comments[this.ci++]!;
      if (allowBlank && this.hadBlankLine(c.offset)) this.blank();
      this.lines.push(indent + c.text.trimEnd());
      allowBlank = true;
      flushed = true;
    }
    // A comment heading a group of elements keeps its blank line below.
    if (flushed && beforeElement && this.hadBlankLine(offset)) this.blank();
  }

  /** Before an element: its leading comments, and a blank line where the source had one. */
  private blankBefore(offset: number, allowBlank: boolean): void {
    const next = this.comments[this.ci];
    const firstOffset = next && next.offset < offset ? next.offset : offset;
    if (allowBlank && this.hadBlankLine(firstOffset)) this.blank();
  }

  private blank(): void {
    if (this.lines.length > 0 && this.lines[this.lines.length - 1] !== '') this.lines.push('');
  }

  /** Whether the whitespace right before `offset` contains an empty line. */
  private hadBlankLine(offset: number): boolean {
    let newlines = 0;
    for (let i = offset - 1; i >= 0; i--) {
      const c = this.text.charCodeAt(i);
      if (c === 10) {
        if (++newlines >= 2) return true;
      } else if (c !== 32 && c !== 9 && c !== 13) return false;
    }
    return false;
  }

  /** A comment on the same line right after an element is kept at the end of that line. */
  private trailing(span: Pick<SourceSpan, 'offset' | 'length'>, limit = Infinity): void {
    const c = this.comments[this.ci];
    if (!c || c.offset < span.offset + span.length || c.offset >= limit) return;
    const endLine = this.src.position(span.offset + span.length - 1).line;
    if (c.line !== endLine) return;
    this.ci++;
    this.lines[this.lines.length - 1] += ` ${c.text.trimEnd()}`;
  }

  private hasCommentWithin(span: A.Expr['span']): boolean {
    const c = this.comments[this.ci];
    return c !== undefined && c.offset < span.offset + span.length;
  }

  private item(item: A.Item, indent: string): void {
    switch (item.type) {
      case 'Import':
        this.flushComments(item.span.offset, indent, false, true);
        this.lines.push(`${indent}import ${item.path.raw}`);
        return;
      case 'Param':
        this.flushComments(item.span.offset, indent, false, true);
        this.lines.push(`${indent}param ${item.name} = ${this.expr(item.value, indent, `${indent}param ${item.name} = `.length)}`);
        return;
      case 'Profile':
        this.profile(item, indent);
        return;
      case 'Stage':
        this.stage(item, indent);
        return;
    }
  }

  private profile(p: A.ProfileDecl, indent: string): void {
    this.flushComments(p.span.offset, indent, false, true);
    this.lines.push(`${indent}profile ${p.name}${p.isDefault ? ' default' : ''} {`);
    const inner = indent + INDENT;
    p.items.forEach((it, i) => {
      this.flushComments(it.span.offset, inner, i > 0, true);
      if (i > 0) this.blankBefore(it.span.offset, true);
      this.item(it, inner);
      this.trailing(it.span, p.end);
    });
    this.flushComments(p.end, inner, p.items.length > 0);
    this.lines.push(`${indent}}`);
  }

  private stage(s: A.StageDecl, indent: string): void {
    this.flushComments(s.span.offset, indent, false, true);
    let head = `${indent}stage ${s.name}`;
    if (s.axes.length > 0) {
      head += `[${s.axes.map((a) => `${a.name} in ${this.expr(a.values, indent, head.length + 10)}`).join(', ')}]`;
    }
    this.lines.push(`${head} = ${s.kind} {`);
    this.entries(s.entries, indent + INDENT, s.end);
    this.lines.push(`${indent}}`);
  }

  private entries(entries: A.Entry[], indent: string, end: number): void {
    entries.forEach((e, i) => {
      this.flushComments(e.keySpan.offset, indent, i > 0, true);
      if (i > 0) this.blankBefore(e.keySpan.offset, true);
      if (e.block) {
        this.lines.push(`${indent}${e.key} {`);
        const blockEnd = e.end - 1;
        this.entries(e.block, indent + INDENT, blockEnd);
        this.lines.push(`${indent}}`);
      } else if (e.value) {
        this.lines.push(`${indent}${e.key} = ${this.expr(e.value, indent, indent.length + e.key.length + 3)}`);
      }
      this.trailing({ offset: e.keySpan.offset, length: e.end - e.keySpan.offset }, end);
    });
    this.flushComments(end, indent, entries.length > 0);
  }

  /** An expression's text; multi-line forms start on the current line and end at `indent`. */
  private expr(e: A.Expr, indent: string, column: number): string {
    switch (e.type) {
      case 'Number':
      case 'String':
        return e.raw;
      case 'Bool':
        return e.value ? 'true' : 'false';
      case 'Null':
        return 'null';
      case 'Name':
        return e.name;
      case 'Error':
        return '';
      case 'Paren':
        return `(${this.expr(e.expr, indent, column + 1)})`;
      case 'Neg':
        return `-${this.expr(e.operand, indent, column + 1)}`;
      case 'Call':
        return `${e.callee}(${e.args.map((a) => this.expr(a, indent, column)).join(', ')})`;
      case 'Binary': {
        let out = this.expr(e.first, indent, column);
        for (const r of e.rest) out += ` ${r.op} ${this.expr(r.right, indent, column + out.length + 3)}`;
        return out;
      }
      case 'Select':
        return `${this.expr(e.target, indent, column)}[${e.selectors.map((s) => (s.type === 'Wildcard' ? '*' : this.expr(s, indent, column))).join(', ')}]`;
      case 'Member':
        return `${this.expr(e.target, indent, column)}.${e.member}`;
      case 'List':
        return this.list(e, indent, column);
      case 'Map':
        return this.map(e, indent, column);
    }
  }

  private list(e: A.ListExpr, indent: string, column: number): string {
    if (e.items.length === 0 && !this.hasCommentWithin(e.span)) return '[]';
    if (!this.hasCommentWithin(e.span)) {
      const one = `[${e.items.map((x) => this.expr(x, indent, column)).join(', ')}]`;
      if (!one.includes('\n') && column + one.length <= WIDTH) return one;
    }
    const inner = indent + INDENT;
    const parts = ['['];
    e.items.forEach((x, i) => {
      const lead = this.collect(x.span.offset, inner, i > 0);
      for (const l of lead) parts.push(l);
      parts.push(`${inner}${this.expr(x, inner, inner.length)},${this.trailingText(x.span, e.span)}`);
    });
    for (const l of this.collect(e.span.offset + e.span.length - 1, inner, e.items.length > 0)) parts.push(l);
    parts.push(`${indent}]`);
    return parts.join('\n');
  }

  private map(e: A.MapExpr, indent: string, column: number): string {
    if (e.entries.length === 0 && !this.hasCommentWithin(e.span)) return '{}';
    if (!this.hasCommentWithin(e.span)) {
      const one = `{ ${e.entries.map((m) => `${m.raw} = ${this.expr(m.value, indent, column)}`).join(', ')} }`;
      if (!one.includes('\n') && column + one.length <= WIDTH) return one;
    }
    const inner = indent + INDENT;
    const parts = ['{'];
    e.entries.forEach((m, i) => {
      for (const l of this.collect(m.keySpan.offset, inner, i > 0)) parts.push(l);
      const head = `${inner}${m.raw} = `;
      parts.push(`${head}${this.expr(m.value, inner, head.length)}${this.trailingText(m.value.span, e.span)}`);
    });
    for (const l of this.collect(e.span.offset + e.span.length - 1, inner, e.entries.length > 0)) parts.push(l);
    parts.push(`${indent}}`);
    return parts.join('\n');
  }

  /** Own-line comments before `offset`, as lines (for multi-line lists and maps). */
  private collect(offset: number, indent: string, allowBlank: boolean): string[] {
    const out: string[] = [];
    while (this.ci < this.comments.length && this.comments[this.ci]!.offset < offset) {
      const c = this.comments[this.ci++]!;
      if (allowBlank && this.hadBlankLine(c.offset)) out.push('');
      out.push(indent + c.text.trimEnd());
      allowBlank = true;
    }
    if (out.length === 0 && allowBlank && this.hadBlankLine(offset)) out.push('');
    return out;
  }

  private trailingText(span: A.Expr['span'], within: A.Expr['span']): string {
    const c = this.comments[this.ci];
    const end = span.offset + span.length;
    if (!c || c.offset < end || c.offset >= within.offset + within.length) return '';
    // The comma after an element may sit between it and its comment.
    if (c.line !== this.src.position(end - 1).line) return '';
    this.ci++;
    return ` ${c.text.trimEnd()}`;
  }
}
