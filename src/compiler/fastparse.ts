// A hand-written parser for well-formed files: the fast path. Chevrotain
// spends most of a 100k-stage compile building and walking tokens; this
// reads the text directly and builds the very same AST (same nodes, same
// spans, same literal helpers). At the first thing it does not expect — any
// syntax error, an unknown character, a bad literal, deep nesting — it
// gives up, and the chevrotain parser, with its error recovery, reads the
// file instead and reports every error. So the fast path never decides
// what an error is; test/compiler/fastparse.test.ts checks that both
// parsers agree on every input the fast one accepts.

import type * as A from './ast.js';
import {
  EntryNode,
  InterpolationNode,
  ListNode,
  MapEntryNode,
  MapNode,
  MemberNode,
  NameNode,
  NumberNode,
  StageNode,
  StringNode,
  endOf,
  startOf,
} from './compact-nodes.js';
import type { Diagnostic } from './diagnostic.js';
import { scanOneLine } from './lexer.js';
import { operatorChain, parseNumber, parseString, type MakeInterpolation } from './literals.js';
import type { SourceSpan } from './plan.js';
import type { SourceFile } from './source.js';

const enum K {
  EOF,
  Name,
  Keyword,
  Number,
  String,
  Triple,
  Punct,
}

const KEYWORDS = new Set(['smke', 'import', 'param', 'profile', 'stage', 'default', 'in', 'true', 'false', 'null']);
const PUNCT = '{}[](),=.+-*/%';
/** IS_PUNCT[c] is 1 for the character codes of PUNCT. */
const IS_PUNCT = new Uint8Array(128);
for (const ch of PUNCT) IS_PUNCT[ch.charCodeAt(0)] = 1;
const NUMBER_RE = /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[A-Za-z_]*/y;
/** Longer token texts are rarely repeated: not worth hashing. */
const MAX_SHARED = 24;
const RECENT_SLOTS = 4096;

const UNSHOWN: SourceSpan = { file: '', line: 1, column: 1, offset: 0, length: 1 };

/** [A-Za-z0-9_]: a character that continues a name. */
function isNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95;
}

/** Thrown to abandon the fast path; never escapes fastParse. */
class GiveUp extends Error {}
const giveUp = new GiveUp();

class FastParser {
  private readonly text: string;
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  // The current token.
  private kind = K.EOF;
  private start = 0;
  private end = 0;
  private tokLine = 1;
  private tokCol = 1;
  private image = '';
  private takenAt = 0;
  private takenLength = 0;
  private depth = 0;
  private readonly diags: Diagnostic[] = [];
  /**
   * Lists are collected here and copied out at their exact length: an array
   * grown by push keeps room for 16 elements, and a 100k-stage file holds
   * about ten small lists per stage for the whole compile.
   */
  private readonly scratch: unknown[] = [];
  /**
   * Recently seen short token texts, by a hash of their characters: a large
   * pipeline repeats the same keys, kinds, stage names and literals (`argv`,
   * `exec`, `"run"`) in every stage, and each slice of the source would
   * otherwise be a string of its own for the whole compile. A fixed table
   * rather than a Map: unique names (`s81234`) only overwrite a slot.
   */
  private readonly recent: string[] = new Array<string>(RECENT_SLOTS).fill('');
  /**
   * The `parts` of a plain string literal, in the slot of its text in
   * `recent`: identical plain strings share one frozen one-element list.
   */
  private readonly recentParts: (readonly string[] | undefined)[] = new Array<readonly string[] | undefined>(RECENT_SLOTS).fill(undefined);
  /** Interpolations as compact nodes: their spans are built only when read. */
  private readonly makeInterpolation: MakeInterpolation = (path, offset, length) => new InterpolationNode(this.src, path, offset, length);
  readonly comments: A.Comment[] = [];

  constructor(
    private readonly src: SourceFile,
    private readonly maxDepth: number,
  ) {
    this.text = src.text;
    this.next();
  }

  private span(): SourceSpan {
    return { file: this.src.path, line: this.tokLine, column: this.tokCol, offset: this.start, length: Math.max(1, this.end - this.start) };
  }

  private join(a: SourceSpan | undefined, b: SourceSpan | undefined): SourceSpan {
    return this.src.join(a!, b!);
  }

  /** Moves to the next token, skipping whitespace and collecting comments. */
  private next(): void {
    const t = this.text;
    for (;;) {
      const c = t.charCodeAt(this.pos);
      if (c === 10) {
        this.pos++;
        this.line++;
        this.lineStart = this.pos;
      } else if (c === 32 || c === 9 || c === 13) this.pos++;
      else if (c === 35) {
        const nl = t.indexOf('\n', this.pos);
        const end = nl === -1 ? t.length : nl;
        this.comments.push({ text: t.slice(this.pos, end), offset: this.pos, line: this.line });
        this.pos = end;
      } else break;
    }
    this.start = this.pos;
    this.tokLine = this.line;
    this.tokCol = this.pos - this.lineStart + 1;
    if (this.pos >= t.length) {
      this.kind = K.EOF;
      this.end = this.pos;
      this.image = '';
      return;
    }
    const c = t.charCodeAt(this.pos);
    if (c === 34) {
      if (t.startsWith('"""', this.pos)) {
        const close = t.indexOf('"""', this.pos + 3);
        if (close === -1) throw giveUp;
        this.end = close + 3;
        this.kind = K.Triple;
        // Lines inside the string move the line count for what follows.
        for (let i = t.indexOf('\n', this.pos); i !== -1 && i < this.end; i = t.indexOf('\n', i + 1)) {
          this.line++;
          this.lineStart = i + 1;
        }
      } else {
        const end = scanOneLine(t, this.pos);
        if (end <= 0) throw giveUp;
        this.end = end;
        this.kind = K.String;
      }
    } else if (c >= 48 && c <= 57) {
      NUMBER_RE.lastIndex = this.pos;
      NUMBER_RE.test(t);
      this.end = NUMBER_RE.lastIndex;
      this.kind = K.Number;
    } else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) {
      // Scanned by hand: names are most tokens, and a sticky regex costs more.
      let e = this.pos + 1;
      while (isNameChar(t.charCodeAt(e))) e++;
      this.end = e;
      this.image = this.textAt(this.pos, this.end);
      this.kind = KEYWORDS.has(this.image) ? K.Keyword : K.Name;
      this.pos = this.end;
      return;
    } else if (c < 128 && IS_PUNCT[c] === 1) {
      this.end = this.pos + 1;
      this.kind = K.Punct;
    } else throw giveUp;
    this.image = this.textAt(this.pos, this.end);
    this.pos = this.end;
  }

  /** The source text from `start` to `end`, shared with an earlier token of the same text when one is recent. */
  private textAt(start: number, end: number): string {
    const t = this.text;
    const length = end - start;
    if (length > MAX_SHARED) return t.slice(start, end);
    const h = this.slotOf(start, end);
    const known = this.recent[h]!;
    if (known.length === length) {
      // Compared by hand: startsWith at an offset of a large text costs more than these few characters.
      let k = 0;
      while (k < length && known.charCodeAt(k) === t.charCodeAt(start + k)) k++;
      if (k === length) return known;
    }
    const s = t.slice(start, end);
    this.recent[h] = s;
    return s;
  }

  /** The slot of `recent` for the text from `start` to `end` (at most MAX_SHARED long). */
  private slotOf(start: number, end: number): number {
    const t = this.text;
    // A few characters are enough to tell apart the words a pipeline repeats; a collision only costs a copy.
    return (
      (Math.imul(Math.imul(Math.imul(end - start, 31) + t.charCodeAt(start), 31) + t.charCodeAt(end - 1), 31) + t.charCodeAt(start + ((end - start) >> 1))) &
      (RECENT_SLOTS - 1)
    );
  }

  /** `[text]` for the text from `start` to `end`: one frozen list shared by the recent strings of that text. */
  private plainParts(start: number, end: number): string[] {
    const text = this.textAt(start, end);
    if (end - start > MAX_SHARED) return [text];
    const h = this.slotOf(start, end);
    const known = this.recentParts[h];
    if (known?.[0] === text) return known as string[];
    const parts = Object.freeze([text]);
    this.recentParts[h] = parts;
    return parts as string[];
  }

  /**
   * A string literal at `at`, as a compact node. A plain one-line string (no
   * escape, no `${`) shares its text and parts like the tokens; any other is
   * split by parseString. Its diagnostics send the file to the recovering
   * parser, so the span given to it only places the interpolations.
   */
  private stringLiteral(image: string, at: number, triple: boolean): A.StringExpr {
    if (!triple && image.indexOf('\\') === -1 && image.indexOf('$') === -1) {
      return new StringNode(this.src, at, image.length, image, this.plainParts(at + 1, at + image.length - 1));
    }
    const place: SourceSpan = { ...UNSHOWN, offset: at, length: image.length };
    const parsed = this.literal((d) => parseString(image, place, triple, d, this.makeInterpolation));
    return new StringNode(this.src, at, image.length, image, parsed.parts);
  }

  private is(kind: K, image?: string): boolean {
    return this.kind === kind && (image === undefined || this.image === image);
  }

  private isPunct(p: string): boolean {
    return this.kind === K.Punct && this.image === p;
  }

  /** Consumes a token of this kind (and image), returning its span and image. */
  private take(kind: K, image?: string): { span: SourceSpan; image: string } {
    const span = this.span();
    return { span, image: this.takeText(kind, image) };
  }

  /** Consumes a token like `take`, returning its text; its place is left in `takenAt` and `takenLength`. */
  private takeText(kind: K, image?: string): string {
    if (!this.is(kind, image)) throw giveUp;
    const text = this.image;
    this.takenAt = this.start;
    this.takenLength = Math.max(1, this.end - this.start);
    this.next();
    return text;
  }

  /** Consumes an opening bracket, returning its offset. */
  private open(p: string): number {
    if (++this.depth > this.maxDepth) throw giveUp;
    this.takeText(K.Punct, p);
    return this.takenAt;
  }

  /** Consumes a closing bracket, returning its offset. */
  private close(p: string): number {
    this.depth--;
    this.takeText(K.Punct, p);
    return this.takenAt;
  }

  /** A one-character span (a bracket) at `at`. */
  private charSpan(at: number): SourceSpan {
    return this.src.span(at, 1);
  }

  private optionalComma(): boolean {
    if (!this.isPunct(',')) return false;
    this.next();
    return true;
  }

  /** Where a list being collected starts in the scratch stack (lists nest, so it is a stack). */
  private mark(): number {
    return this.scratch.length;
  }

  /** The items collected since `mark`, as an array of exactly that length. */
  private collect<T>(mark: number): T[] {
    const items = this.scratch.slice(mark) as T[];
    this.scratch.length = mark;
    return items;
  }

  private literal<T>(build: (diags: Diagnostic[]) => T): T {
    const node = build(this.diags);
    if (this.diags.length > 0) throw giveUp;
    return node;
  }

  /** What has been read so far: the version line and the complete top-level items. */
  version: A.FileAst['version'];
  readonly items: A.Item[] = [];
  /** Where the top-level item being read starts (0 while reading the version line). */
  itemStart = 0;

  file(): void {
    if (this.is(K.Keyword, 'smke')) {
      const k = this.take(K.Keyword).span;
      const n = this.take(K.Number);
      this.version = { value: n.image, span: this.join(k, n.span) };
    }
    while (this.kind !== K.EOF) {
      this.itemStart = this.start;
      this.items.push(this.item(true));
    }
  }

  /** The offset of the token being read. */
  get at(): number {
    return this.start;
  }

  private item(topLevel: boolean): A.Item {
    if (this.kind !== K.Keyword) throw giveUp;
    switch (this.image) {
      case 'param':
        return this.param();
      case 'stage':
        return this.stage();
      case 'import':
        if (!topLevel) throw giveUp;
        return this.importDecl();
      case 'profile':
        if (!topLevel) throw giveUp;
        return this.profile();
      default:
        throw giveUp;
    }
  }

  private importDecl(): A.ImportDecl {
    const k = this.take(K.Keyword).span;
    const s = this.take(K.String);
    const path = this.literal((d) => parseString(s.image, s.span, false, d));
    return { type: 'Import', span: this.join(k, s.span), path };
  }

  private param(): A.ParamDecl {
    const k = this.take(K.Keyword).span;
    const name = this.take(K.Name);
    this.take(K.Punct, '=');
    const value = this.expr();
    return { type: 'Param', span: this.join(k, value.span), name: name.image, nameSpan: name.span, value };
  }

  private profile(): A.ProfileDecl {
    const k = this.take(K.Keyword).span;
    const name = this.take(K.Name);
    let isDefault = false;
    if (this.is(K.Keyword, 'default')) {
      this.next();
      isDefault = true;
    }
    this.open('{');
    const items: (A.ParamDecl | A.StageDecl)[] = [];
    while (!this.isPunct('}')) {
      items.push(this.item(false) as A.ParamDecl | A.StageDecl);
      this.optionalComma();
    }
    const close = this.close('}');
    return { type: 'Profile', span: this.join(k, this.charSpan(close)), name: name.image, nameSpan: name.span, isDefault, items, end: close };
  }

  private stage(): A.StageDecl {
    this.takeText(K.Keyword);
    const at = this.takenAt;
    const name = this.takeText(K.Name);
    const nameAt = this.takenAt;
    const nameLength = this.takenLength;
    const axes: A.Axis[] = [];
    if (this.isPunct('[')) {
      this.open('[');
      do {
        const axisName = this.take(K.Name);
        this.take(K.Keyword, 'in');
        axes.push({ name: axisName.image, nameSpan: axisName.span, values: this.expr() });
      } while (this.optionalComma() && !this.isPunct(']'));
      this.close(']');
    }
    this.take(K.Punct, '=');
    let kind = this.takeText(K.Name);
    const kindAt = this.takenAt;
    let kindEnd = this.takenAt + this.takenLength;
    while (this.isPunct('.')) {
      this.next();
      kind += `.${this.takeText(K.Name)}`;
      kindEnd = this.takenAt + this.takenLength;
    }
    const { entries, end } = this.body();
    return new StageNode(this.src, at, end + 1 - at, name, nameAt, nameLength, axes, kind, kindAt, kindEnd - kindAt, entries, end);
  }

  private body(): { entries: A.Entry[]; end: number } {
    this.open('{');
    const mark = this.mark();
    const entries = this.scratch;
    while (!this.isPunct('}')) {
      const key = this.takeText(K.Name);
      const keyAt = this.takenAt;
      const keyLength = this.takenLength;
      if (this.isPunct('=')) {
        this.next();
        const value = this.expr();
        const valueEnd = endOf(value);
        // As SourceFile.join: the entry ends where its value ends.
        const end = valueEnd <= keyAt ? keyAt + keyLength : valueEnd;
        entries.push(new EntryNode(this.src, key, keyAt, keyLength, end, value, undefined));
      } else if (this.isPunct('{')) {
        const block = this.body();
        entries.push(new EntryNode(this.src, key, keyAt, keyLength, block.end + 1, undefined, block.entries));
      } else throw giveUp;
      this.optionalComma();
    }
    return { entries: this.collect(mark), end: this.close('}') };
  }

  private static readonly OPS = new Set(['+', '-', '*', '/', '%']);

  private expr(): A.Expr {
    const first = this.unary();
    if (!(this.kind === K.Punct && FastParser.OPS.has(this.image))) return first;
    const ops: { op: A.BinaryOp; opSpan: SourceSpan }[] = [];
    const rights: A.Expr[] = [];
    while (this.kind === K.Punct && FastParser.OPS.has(this.image)) {
      ops.push({ op: this.image as A.BinaryOp, opSpan: this.span() });
      this.next();
      rights.push(this.unary());
    }
    return operatorChain(first, ops, rights, (a, b) => this.join(a, b));
  }

  private unary(): A.Expr {
    const minus: SourceSpan[] = [];
    while (this.isPunct('-')) {
      if (minus.length >= this.maxDepth) throw giveUp;
      minus.push(this.span());
      this.next();
    }
    let e = this.primary();
    if (this.isPunct('[')) {
      this.open('[');
      const selectors: (A.Expr | A.WildcardSelector)[] = [];
      do {
        if (this.isPunct('*')) {
          selectors.push({ type: 'Wildcard', span: this.span() });
          this.next();
        } else selectors.push(this.expr());
      } while (this.optionalComma() && !this.isPunct(']'));
      const close = this.close(']');
      e = { type: 'Select', span: this.join(e.span, this.charSpan(close)), target: e as A.NameExpr, selectors };
    }
    if (this.isPunct('.')) {
      this.next();
      const member = this.takeText(K.Name);
      const at = startOf(e);
      const end = this.takenAt + this.takenLength;
      e = new MemberNode(this.src, at, end - at, e as A.NameExpr, member, this.takenAt, this.takenLength);
    }
    for (let i = minus.length - 1; i >= 0; i--) e = { type: 'Neg', span: this.join(minus[i], e.span), operand: e };
    return e;
  }

  private primary(): A.Expr {
    const at = this.start;
    const image = this.image;
    switch (this.kind) {
      case K.Number: {
        this.next();
        // Any diagnostic sends the file to the recovering parser, so the span given here is never shown.
        const n = this.literal((d) => parseNumber(image, UNSHOWN, d));
        return new NumberNode(this.src, at, image.length, image, n.value, n.unit);
      }
      case K.String:
        this.next();
        return this.stringLiteral(image, at, false);
      case K.Triple:
        this.next();
        return this.stringLiteral(image, at, true);
      case K.Keyword: {
        const span = this.span();
        this.next();
        if (image === 'true' || image === 'false') return { type: 'Bool', span, value: image === 'true' };
        if (image === 'null') return { type: 'Null', span };
        throw giveUp;
      }
      case K.Name: {
        this.next();
        if (!this.isPunct('(')) return new NameNode(this.src, at, image.length, image);
        const span = this.src.span(at, image.length);
        this.open('(');
        const args = this.exprList(')');
        const close = this.close(')');
        return { type: 'Call', span: this.join(span, this.charSpan(close)), callee: image, calleeSpan: span, args };
      }
      case K.Punct:
        if (image === '[') {
          const open = this.open('[');
          const items = this.exprList(']');
          return new ListNode(this.src, open, this.close(']') + 1 - open, items);
        }
        if (image === '{') return this.map();
        if (image === '(') {
          const open = this.open('(');
          const expr = this.expr();
          return { type: 'Paren', span: this.join(this.charSpan(open), this.charSpan(this.close(')'))), expr };
        }
        throw giveUp;
      default:
        throw giveUp;
    }
  }

  /** Comma-separated expressions up to (not including) the closing bracket; a trailing comma is allowed. */
  private exprList(closer: string): A.Expr[] {
    const mark = this.mark();
    while (!this.isPunct(closer)) {
      const item = this.expr();
      this.scratch.push(item);
      if (!this.optionalComma() && !this.isPunct(closer)) throw giveUp;
    }
    return this.collect(mark);
  }

  private map(): A.MapExpr {
    const open = this.open('{');
    const mark = this.mark();
    while (!this.isPunct('}')) {
      let key: string;
      const keyAt = this.start;
      const keyLength = Math.max(1, this.end - this.start);
      const raw = this.image;
      if (this.kind === K.Name) {
        key = raw;
        this.next();
      } else if (this.kind === K.String) {
        const s = this.stringLiteral(raw, keyAt, false);
        if (s.parts.some((p) => typeof p !== 'string')) throw giveUp;
        key = (s.parts as string[]).join('');
        this.next();
      } else throw giveUp;
      this.take(K.Punct, '=');
      this.scratch.push(new MapEntryNode(this.src, key, raw, keyAt, keyLength, this.expr()));
      this.optionalComma();
    }
    const entries = this.collect<A.MapEntry>(mark);
    return new MapNode(this.src, open, this.close('}') + 1 - open, entries);
  }
}

/** The AST of a well-formed file, or undefined when the file needs the recovering parser. */
export function fastParse(src: SourceFile, maxDepth: number): A.FileAst | undefined {
  const r = fastParseOrFailure(src, maxDepth);
  return 'ast' in r ? r.ast : undefined;
}

/** Where the fast path gave up, and what it had read before the top-level item it gave up in. */
export interface FastFailure {
  /** Offset of the token it gave up at. */
  at: number;
  /** Where the top-level item containing `at` starts (0 if it gave up in the version line). */
  itemStart: number;
  version: A.FileAst['version'];
  /** The complete items before `itemStart`. */
  items: A.Item[];
  /** The comments before `itemStart`. */
  comments: A.Comment[];
}

/** The AST of a well-formed file, or where the fast path gave up and what it had read until then. */
export function fastParseOrFailure(src: SourceFile, maxDepth: number): { ast: A.FileAst } | { failure: FastFailure } {
  let p: FastParser | undefined;
  try {
    p = new FastParser(src, maxDepth);
    p.file();
    return { ast: { path: src.path, version: p.version, items: p.items, comments: p.comments } };
  } catch (e) {
    if (e !== giveUp) throw e;
    if (!p) return { failure: { at: 0, itemStart: 0, version: undefined, items: [], comments: [] } };
    const itemStart = p.itemStart;
    return { failure: { at: p.at, itemStart, version: p.version, items: p.items, comments: p.comments.filter((c) => c.offset < itemStart) } };
  }
}
