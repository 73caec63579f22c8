// AST nodes that keep their spans as offsets into the source and build the
// SourceSpan objects (with line and column) only when one is read. The fast
// parser builds the common nodes this way: nearly every span exists for a
// diagnostic that is never written, and in a 100k-stage file the span
// objects were half of all objects the compile kept alive, which the garbage
// collector copied again and again. Readers see the interfaces of ast.ts:
// `span`, `keySpan`, `nameSpan`, `kindSpan` and `memberSpan` are getters.
// Each node serialises to the plain form the recovering parser builds.

import type * as A from './ast.js';
import type { SourceSpan } from './plan.js';
import type { SourceFile } from './source.js';

/** Fields that say where a node is (its spans, as offsets): not part of its plain form. */
const PLACE_FIELDS = new Set(['src', 'spanAt', 'spanLength', 'memberAt', 'memberLength', 'nameAt', 'nameLength', 'kindAt', 'kindLength']);

/**
 * A node whose own span is `spanLength` characters at `spanAt` of `src`.
 * Fields are declared, not initialised (`declare`), and set in the
 * constructors: class-field initialisers, run for millions of nodes, cost
 * more than the rest of the parse.
 */
abstract class Located {
  declare protected readonly src: SourceFile;
  declare readonly spanAt: number;
  declare readonly spanLength: number;

  constructor(src: SourceFile, spanAt: number, spanLength: number) {
    this.src = src;
    this.spanAt = spanAt;
    this.spanLength = spanLength;
  }

  get span(): SourceSpan {
    return this.src.span(this.spanAt, this.spanLength);
  }

  /** The node as the recovering parser builds it: plain data with its spans. */
  toJSON(): Record<string, unknown> {
    const plain: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this)) if (!PLACE_FIELDS.has(k)) plain[k] = v;
    plain.span = this.span;
    return plain;
  }
}

/** Where any node starts and ends, without building a span for a compact one. */
export function startOf(node: A.Expr): number {
  return node instanceof Located ? node.spanAt : node.span.offset;
}

export function endOf(node: A.Expr): number {
  return node instanceof Located ? node.spanAt + node.spanLength : node.span.offset + node.span.length;
}

export class StringNode extends Located implements A.StringExpr {
  declare readonly type: 'String';
  declare readonly raw: string;
  declare readonly parts: (string | A.Interpolation)[];

  constructor(src: SourceFile, spanAt: number, spanLength: number, raw: string, parts: (string | A.Interpolation)[]) {
    super(src, spanAt, spanLength);
    this.type = 'String';
    this.raw = raw;
    this.parts = parts;
  }
}

/** `${name}` in a string, from the fast parser. */
export class InterpolationNode implements A.Interpolation {
  declare private readonly src: SourceFile;
  declare readonly path: string[];
  declare readonly spanAt: number;
  declare readonly spanLength: number;

  constructor(src: SourceFile, path: string[], spanAt: number, spanLength: number) {
    this.src = src;
    this.path = path;
    this.spanAt = spanAt;
    this.spanLength = spanLength;
  }

  get span(): SourceSpan {
    return this.src.span(this.spanAt, this.spanLength);
  }

  toJSON(): A.Interpolation {
    return { path: this.path, span: this.span };
  }
}

export class NumberNode extends Located implements A.NumberExpr {
  declare readonly type: 'Number';
  declare readonly raw: string;
  declare readonly value: number;
  declare readonly unit: string | undefined;

  constructor(src: SourceFile, spanAt: number, spanLength: number, raw: string, value: number, unit: string | undefined) {
    super(src, spanAt, spanLength);
    this.type = 'Number';
    this.raw = raw;
    this.value = value;
    this.unit = unit;
  }
}

export class NameNode extends Located implements A.NameExpr {
  declare readonly type: 'Name';
  declare readonly name: string;

  constructor(src: SourceFile, spanAt: number, spanLength: number, name: string) {
    super(src, spanAt, spanLength);
    this.type = 'Name';
    this.name = name;
  }
}

export class ListNode extends Located implements A.ListExpr {
  declare readonly type: 'List';
  declare readonly items: A.Expr[];

  constructor(src: SourceFile, spanAt: number, spanLength: number, items: A.Expr[]) {
    super(src, spanAt, spanLength);
    this.type = 'List';
    this.items = items;
  }
}

export class MapNode extends Located implements A.MapExpr {
  declare readonly type: 'Map';
  declare readonly entries: A.MapEntry[];

  constructor(src: SourceFile, spanAt: number, spanLength: number, entries: A.MapEntry[]) {
    super(src, spanAt, spanLength);
    this.type = 'Map';
    this.entries = entries;
  }
}

/** `target.member`: its span runs from the target's start to the member's end. */
export class MemberNode extends Located implements A.MemberExpr {
  declare readonly type: 'Member';
  declare readonly target: A.NameExpr | A.SelectExpr;
  declare readonly member: string;
  declare readonly memberAt: number;
  declare readonly memberLength: number;

  constructor(src: SourceFile, spanAt: number, spanLength: number, target: A.NameExpr | A.SelectExpr, member: string, memberAt: number, memberLength: number) {
    super(src, spanAt, spanLength);
    this.type = 'Member';
    this.target = target;
    this.member = member;
    this.memberAt = memberAt;
    this.memberLength = memberLength;
  }

  get memberSpan(): SourceSpan {
    return this.src.span(this.memberAt, this.memberLength);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), memberSpan: this.memberSpan };
  }
}

/** A key and its value, in a map literal. */
export class MapEntryNode implements A.MapEntry {
  declare private readonly src: SourceFile;
  declare readonly key: string;
  declare readonly raw: string;
  declare readonly keyAt: number;
  declare readonly keyLength: number;
  declare readonly value: A.Expr;

  constructor(src: SourceFile, key: string, raw: string, keyAt: number, keyLength: number, value: A.Expr) {
    this.src = src;
    this.key = key;
    this.raw = raw;
    this.keyAt = keyAt;
    this.keyLength = keyLength;
    this.value = value;
  }

  get keySpan(): SourceSpan {
    return this.src.span(this.keyAt, this.keyLength);
  }

  toJSON(): A.MapEntry {
    return { key: this.key, raw: this.raw, keySpan: this.keySpan, value: this.value };
  }
}

/** `key = value` or `key { ... }` in a stage body. */
export class EntryNode implements A.Entry {
  declare private readonly src: SourceFile;
  declare readonly key: string;
  declare readonly keyAt: number;
  declare readonly keyLength: number;
  declare readonly end: number;
  declare readonly value: A.Expr | undefined;
  declare readonly block: A.Entry[] | undefined;

  constructor(src: SourceFile, key: string, keyAt: number, keyLength: number, end: number, value: A.Expr | undefined, block: A.Entry[] | undefined) {
    this.src = src;
    this.key = key;
    this.keyAt = keyAt;
    this.keyLength = keyLength;
    this.end = end;
    this.value = value;
    this.block = block;
  }

  get keySpan(): SourceSpan {
    return this.src.span(this.keyAt, this.keyLength);
  }

  toJSON(): A.Entry {
    const plain: A.Entry = { key: this.key, keySpan: this.keySpan, end: this.end };
    if (this.value !== undefined) plain.value = this.value;
    if (this.block !== undefined) plain.block = this.block;
    return plain;
  }
}

export class StageNode extends Located implements A.StageDecl {
  declare readonly type: 'Stage';
  declare readonly name: string;
  declare readonly nameAt: number;
  declare readonly nameLength: number;
  declare readonly axes: A.Axis[];
  declare readonly kind: string;
  declare readonly kindAt: number;
  declare readonly kindLength: number;
  declare readonly entries: A.Entry[];
  declare readonly end: number;

  constructor(
    src: SourceFile,
    spanAt: number,
    spanLength: number,
    name: string,
    nameAt: number,
    nameLength: number,
    axes: A.Axis[],
    kind: string,
    kindAt: number,
    kindLength: number,
    entries: A.Entry[],
    end: number,
  ) {
    super(src, spanAt, spanLength);
    this.type = 'Stage';
    this.name = name;
    this.nameAt = nameAt;
    this.nameLength = nameLength;
    this.axes = axes;
    this.kind = kind;
    this.kindAt = kindAt;
    this.kindLength = kindLength;
    this.entries = entries;
    this.end = end;
  }

  get nameSpan(): SourceSpan {
    return this.src.span(this.nameAt, this.nameLength);
  }

  get kindSpan(): SourceSpan {
    return this.src.span(this.kindAt, this.kindLength);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), nameSpan: this.nameSpan, kindSpan: this.kindSpan };
  }
}
