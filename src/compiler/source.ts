// One source file's text and the mapping from offsets to lines and columns,
// so that every diagnostic can point at a span inside the file.

import type { SourceSpan } from './plan.js';

/**
 * The text the compiler reads: without a UTF-8 byte order mark (editors on
 * Windows write one; it is no character of the file) and with CRLF line
 * ends as LF, so that every string form (`"""` scripts included) holds the
 * same text whichever way the file was saved. Lines and columns are the
 * same as in the file: the BOM sits before column 1, and `\r` at the end of
 * a line has no column anyone points at.
 */
export function normalizeSource(text: string): string {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return t.indexOf('\r') === -1 ? t : t.replace(/\r\n/g, '\n');
}

export class SourceFile {
  private lineStarts?: number[];
  /** The normalised text (see normalizeSource): every offset and span refers to it. */
  readonly text: string;

  constructor(
    readonly path: string,
    text: string,
  ) {
    this.text = normalizeSource(text);
  }

  private starts(): number[] {
    if (!this.lineStarts) {
      const starts = [0];
      const t = this.text;
      for (let i = t.indexOf('\n'); i !== -1; i = t.indexOf('\n', i + 1)) starts.push(i + 1);
      this.lineStarts = starts;
    }
    return this.lineStarts;
  }

  /** 1-based line and column of an offset. */
  position(offset: number): { line: number; column: number } {
    const starts = this.starts();
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }

  /**
   * A span clamped into the file: a span at or past the end (an error "at end
   * of file") points at the last character, so that spans always lie inside.
   */
  span(offset: number, length: number): SourceSpan {
    const size = this.text.length;
    let off = Number.isFinite(offset) ? Math.max(0, Math.floor(offset)) : size;
    if (off >= size) off = Math.max(0, size - 1);
    let len = Number.isFinite(length) ? Math.max(1, Math.floor(length)) : 1;
    if (off + len > size) len = Math.max(0, size - off);
    const { line, column } = this.position(off);
    return { file: this.path, line, column, offset: off, length: len };
  }

  /** Offset just past the span from the start of `a` to the end of `b` (see `join`). */
  joinEnd(a: SourceSpan, b: SourceSpan): number {
    return b.offset + b.length <= a.offset ? a.offset + a.length : b.offset + b.length;
  }

  /** The span from the start of `a` to the end of `b`. */
  join(a: SourceSpan, b: SourceSpan): SourceSpan {
    if (b.offset + b.length <= a.offset) return a;
    return { ...a, length: b.offset + b.length - a.offset };
  }
}
