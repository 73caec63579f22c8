// The typed AST of one .smke file. Every node keeps its source span so that
// any later check can point at the exact text it is about.

import type { SourceSpan } from './plan.js';

export type Expr =
  | NumberExpr
  | StringExpr
  | BoolExpr
  | NullExpr
  | ListExpr
  | MapExpr
  | NameExpr
  | CallExpr
  | NegExpr
  | BinaryExpr
  | ParenExpr
  | SelectExpr
  | MemberExpr
  | ErrorExpr;

export interface NumberExpr {
  type: 'Number';
  span: SourceSpan;
  /** The text as written (kept for `smke fmt`). */
  raw: string;
  /** Value in base units: bytes for sizes, seconds for durations. */
  value: number;
  unit?: string;
}

/** A piece of an interpolated string: `${name}` or `${stage.output}`. */
export interface Interpolation {
  path: string[];
  span: SourceSpan;
}

export interface StringExpr {
  type: 'String';
  span: SourceSpan;
  raw: string;
  parts: (string | Interpolation)[];
}

export interface BoolExpr {
  type: 'Bool';
  span: SourceSpan;
  value: boolean;
}

export interface NullExpr {
  type: 'Null';
  span: SourceSpan;
}

export interface ListExpr {
  type: 'List';
  span: SourceSpan;
  items: Expr[];
}

export interface MapEntry {
  key: string;
  /** The key as written: a name, or a quoted string with its quotes (kept for `smke fmt`). */
  raw: string;
  keySpan: SourceSpan;
  value: Expr;
}

export interface MapExpr {
  type: 'Map';
  span: SourceSpan;
  entries: MapEntry[];
}

export interface NameExpr {
  type: 'Name';
  span: SourceSpan;
  name: string;
}

export interface CallExpr {
  type: 'Call';
  span: SourceSpan;
  callee: string;
  calleeSpan: SourceSpan;
  args: Expr[];
}

export interface NegExpr {
  type: 'Neg';
  span: SourceSpan;
  operand: Expr;
}

export type BinaryOp = '+' | '-' | '*' | '/' | '%';

/**
 * A left-associative chain `first op1 a op2 b ...` of one precedence level,
 * kept flat so that a very long chain cannot overflow the stack when walked.
 */
export interface BinaryExpr {
  type: 'Binary';
  span: SourceSpan;
  first: Expr;
  rest: { op: BinaryOp; opSpan: SourceSpan; right: Expr }[];
}

export interface ParenExpr {
  type: 'Paren';
  span: SourceSpan;
  expr: Expr;
}

export interface WildcardSelector {
  type: 'Wildcard';
  span: SourceSpan;
}

/** `glue[cola]`, `sweep[0.1, 3]`, `glue[*]`: instances of a matrix stage. */
export interface SelectExpr {
  type: 'Select';
  span: SourceSpan;
  target: NameExpr;
  selectors: (Expr | WildcardSelector)[];
}

/** `stage.output` or `glue[cola].output`. */
export interface MemberExpr {
  type: 'Member';
  span: SourceSpan;
  target: NameExpr | SelectExpr;
  member: string;
  memberSpan: SourceSpan;
}

/** Stands where the parser recovered from a syntax error (already reported). */
export interface ErrorExpr {
  type: 'Error';
  span: SourceSpan;
}

/** `key = value` in a stage body, or `key { ... }` (only `resources` takes a block). */
export interface Entry {
  key: string;
  keySpan: SourceSpan;
  /**
   * Offset just past the entry (its value, or its block's closing brace).
   * The entry's span is keySpan.offset up to here; a number rather than a
   * span object because a large pipeline has hundreds of thousands of entries.
   */
  end: number;
  value?: Expr;
  block?: Entry[];
}

export interface Axis {
  name: string;
  nameSpan: SourceSpan;
  values: Expr;
}

export interface StageDecl {
  type: 'Stage';
  span: SourceSpan;
  name: string;
  nameSpan: SourceSpan;
  axes: Axis[];
  kind: string;
  kindSpan: SourceSpan;
  entries: Entry[];
  /** Offset of the closing brace: comments before it stay inside the body in `smke fmt`. */
  end: number;
}

export interface ParamDecl {
  type: 'Param';
  span: SourceSpan;
  name: string;
  nameSpan: SourceSpan;
  value: Expr;
}

export interface ProfileDecl {
  type: 'Profile';
  span: SourceSpan;
  name: string;
  nameSpan: SourceSpan;
  isDefault: boolean;
  items: (ParamDecl | StageDecl)[];
  end: number;
}

export interface ImportDecl {
  type: 'Import';
  span: SourceSpan;
  path: StringExpr;
}

export type Item = ImportDecl | ParamDecl | ProfileDecl | StageDecl;

export interface Comment {
  text: string;
  offset: number;
  line: number;
}

export interface FileAst {
  path: string;
  version?: { value: string; span: SourceSpan };
  items: Item[];
  comments: Comment[];
}
