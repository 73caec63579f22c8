// The parser: tokens -> typed AST, with chevrotain's error recovery so that
// one compile reports every syntax error of a file, not just the first.
// Recursion happens only through brackets, whose depth is checked on the
// token stream before parsing (see guardDepth), so no input can overflow
// the stack.

import { EmbeddedActionsParser, EOF, type IParserErrorMessageProvider, type IToken, type TokenType } from './chevrotain.js';
import type * as A from './ast.js';
import type { Diagnostic } from './diagnostic.js';
import * as T from './lexer.js';
import type { SourceSpan } from './plan.js';
import { SourceFile } from './source.js';
import { fastParseOrFailure, type FastFailure } from './fastparse.js';
import { operatorChain, parseNumber, parseString } from './literals.js';

/** Deepest bracket nesting accepted; far beyond any real pipeline, far below the stack limit. */
export const MAX_DEPTH = 64;
/** Syntax errors reported per file; after that many, the rest are noise from the first ones. */
export const MAX_SYNTAX_ERRORS = 50;

const RULE_WHAT: Record<string, string> = {
  item: '`stage`, `param`, `profile` or `import`',
  profileItem: '`param` or `stage`',
  entry: 'a parameter name',
  expr: 'an expression',
  unary: 'an expression',
  primary: 'an expression',
  selector: 'an instance value or `*`',
  mapKey: 'a key',
};

export function describeToken(tok: IToken): string {
  if (tok.tokenType === EOF) return 'end of file';
  const image = tok.image.length > 24 ? `${tok.image.slice(0, 20)}...` : tok.image;
  return `\`${image.replace(/\n/g, '\\n')}\``;
}

const what = (ruleName: string) => RULE_WHAT[ruleName] ?? 'something else';
const label = (t: TokenType) => (t as { LABEL?: string }).LABEL ?? t.name;

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual }) => `expected ${label(expected)}, found ${describeToken(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `expected ${RULE_WHAT.item}, found ${describeToken(firstRedundant)}`,
  buildNoViableAltMessage: ({ actual, ruleName }) => `expected ${what(ruleName)}, found ${describeToken(actual[0]!)}`,
  buildEarlyExitMessage: ({ actual, ruleName }) => `expected ${what(ruleName)}, found ${describeToken(actual[0]!)}`,
};

const DUMMY: SourceSpan = { file: '', line: 1, column: 1, offset: 0, length: 1 };

class SmkeParser extends EmbeddedActionsParser {
  src?: SourceFile;
  /** Diagnostics found while building nodes (bad units, escapes, interpolations). */
  diags: Diagnostic[] = [];

  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, errorMessageProvider: messages, skipValidations: true });
    this.performSelfAnalysis();
  }

  /** Span of a token; tokens inserted by error recovery have no position and take the next real one's. */
  sp(tok: IToken | undefined): SourceSpan {
    const src = this.src;
    if (!src || !tok) return DUMMY;
    if (Number.isFinite(tok.startOffset) && tok.tokenType !== EOF) {
      return {
        file: src.path,
        line: tok.startLine ?? 1,
        column: tok.startColumn ?? 1,
        offset: tok.startOffset,
        length: Math.max(1, tok.image.length),
      };
    }
    const next = this.LA(1);
    if (next.tokenType !== EOF && Number.isFinite(next.startOffset)) return this.sp(next);
    return src.span(src.text.length, 1);
  }

  join(a: SourceSpan | undefined, b: SourceSpan | undefined): SourceSpan {
    if (!a || !b || !this.src) return a ?? DUMMY;
    return this.src.join(a, b);
  }

  /** Offset just past `join(a, b)`. */
  joinEnd(a: SourceSpan, b: SourceSpan | undefined): number {
    const s = this.join(a, b);
    return s.offset + s.length;
  }

  /**
   * Lists take commas between items. The grammar itself makes them optional
   * (a gate deciding "comma or end" would slow every list down), and a
   * missing one is reported here instead.
   */
  commaMissing(after: SourceSpan | undefined, separated: boolean): void {
    if (separated || !after || !this.src) return;
    this.diags.push({
      code: 'E0001',
      severity: 'error',
      message: 'expected `,` between items',
      span: this.src.span(after.offset + after.length, 1),
      label: 'a comma is missing here',
      help: 'separate list items, arguments and matrix axes with commas',
    });
  }

  errorExpr(): A.ErrorExpr {
    return { type: 'Error', span: this.sp(this.LA(1)) };
  }

  // The file's parts are collected into fields, not returned: if recovery
  // abandons the top rule, what was parsed before the error is kept.
  version: A.FileAst['version'];
  items: A.Item[] = [];

  file = this.RULE('file', (): void => {
    this.OPTION(() => {
      const k = this.CONSUME(T.Smke);
      const n = this.CONSUME(T.NumberLit);
      this.ACTION(() => (this.version = { value: n.image, span: this.join(this.sp(k), this.sp(n)) }));
    });
    this.MANY(() => {
      const it = this.SUBRULE(this.item);
      this.ACTION(() => {
        if (it && typeof it === 'object' && 'type' in it) this.items.push(it);
      });
    });
  });

  item = this.RULE(
    'item',
    (): A.Item | undefined =>
      this.OR([
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.paramDecl) },
        { ALT: () => this.SUBRULE(this.profileDecl) },
        { ALT: () => this.SUBRULE(this.stageDecl) },
      ]),
    { recoveryValueFunc: () => undefined },
  );

  importDecl = this.RULE('importDecl', (): A.ImportDecl => {
    const k = this.CONSUME(T.Import);
    const s = this.CONSUME(T.StringLit);
    const path = this.ACTION(() => parseString(s.image, this.sp(s), false, this.diags));
    return { type: 'Import', span: this.join(this.sp(k), this.sp(s)), path };
  });

  paramDecl = this.RULE('paramDecl', (): A.ParamDecl => {
    const k = this.CONSUME(T.Param);
    const name = this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    const value = this.SUBRULE(this.expr);
    return {
      type: 'Param',
      span: this.join(this.sp(k), value?.span),
      name: name.image,
      nameSpan: this.sp(name),
      value,
    };
  });

  profileDecl = this.RULE('profileDecl', (): A.ProfileDecl => {
    const k = this.CONSUME(T.Profile);
    const name = this.CONSUME(T.Identifier);
    let isDefault = false;
    this.OPTION(() => {
      this.CONSUME(T.Default);
      isDefault = true;
    });
    this.CONSUME(T.LBrace);
    const items: (A.ParamDecl | A.StageDecl)[] = [];
    this.MANY(() => {
      const it = this.SUBRULE(this.profileItem);
      if (it && typeof it === 'object' && 'type' in it) items.push(it);
      this.OPTION1(() => this.CONSUME(T.Comma));
    });
    const close = this.CONSUME(T.RBrace);
    const closeSpan = this.sp(close);
    return {
      type: 'Profile',
      span: this.join(this.sp(k), closeSpan),
      name: name.image,
      nameSpan: this.sp(name),
      isDefault,
      items,
      end: closeSpan.offset,
    };
  });

  profileItem = this.RULE(
    'profileItem',
    (): A.ParamDecl | A.StageDecl | undefined => this.OR([{ ALT: () => this.SUBRULE(this.paramDecl) }, { ALT: () => this.SUBRULE(this.stageDecl) }]),
    { recoveryValueFunc: () => undefined },
  );

  stageDecl = this.RULE('stageDecl', (): A.StageDecl => {
    const k = this.CONSUME(T.Stage);
    const name = this.CONSUME(T.Identifier);
    const axes: A.Axis[] = [];
    this.OPTION(() => {
      this.CONSUME(T.LBracket);
      let comma = true;
      this.AT_LEAST_ONE(() => {
        const a = this.SUBRULE(this.axis);
        this.ACTION(() => this.commaMissing(axes[axes.length - 1]?.values?.span, comma));
        axes.push(a);
        comma = false;
        this.OPTION1(() => {
          this.CONSUME(T.Comma);
          comma = true;
        });
      });
      this.CONSUME(T.RBracket);
    });
    this.CONSUME(T.Equals);
    const kindFirst = this.CONSUME1(T.Identifier);
    let kind = kindFirst.image;
    let kindSpan = this.sp(kindFirst);
    this.MANY1(() => {
      this.CONSUME(T.Dot);
      const part = this.CONSUME2(T.Identifier);
      kind += `.${part.image}`;
      kindSpan = this.join(kindSpan, this.sp(part));
    });
    const { entries, end } = this.SUBRULE(this.body);
    return {
      type: 'Stage',
      span: this.join(this.sp(k), this.src?.span(end ?? 0, 1)),
      name: name.image,
      nameSpan: this.sp(name),
      axes: axes.filter((a) => a && typeof a === 'object' && 'name' in a),
      kind,
      kindSpan,
      entries: entries ?? [],
      end: end ?? 0,
    };
  });

  axis = this.RULE('axis', (): A.Axis => {
    const name = this.CONSUME(T.Identifier);
    this.CONSUME(T.In);
    const values = this.SUBRULE(this.expr);
    return { name: name.image, nameSpan: this.sp(name), values };
  });

  body = this.RULE(
    'body',
    (): { entries: A.Entry[]; end: number } => {
      this.CONSUME(T.LBrace);
      const entries: A.Entry[] = [];
      this.MANY(() => {
        const e = this.SUBRULE(this.entry);
        if (e && typeof e === 'object' && 'key' in e) entries.push(e);
        this.OPTION(() => this.CONSUME(T.Comma));
      });
      const close = this.CONSUME(T.RBrace);
      return { entries, end: this.sp(close).offset };
    },
    { recoveryValueFunc: () => ({ entries: [], end: this.sp(this.LA(1)).offset }) },
  );

  entry = this.RULE(
    'entry',
    (): A.Entry | undefined => {
      const key = this.CONSUME(T.Identifier);
      const keySpan = this.sp(key);
      return this.OR([
        {
          ALT: () => {
            this.CONSUME(T.Equals);
            const value = this.SUBRULE(this.expr);
            return { key: key.image, keySpan, end: this.joinEnd(keySpan, value?.span), value };
          },
        },
        {
          ALT: () => {
            const { entries, end } = this.SUBRULE(this.body);
            return { key: key.image, keySpan, end: this.joinEnd(keySpan, this.src?.span(end ?? 0, 1)), block: entries ?? [] };
          },
        },
      ]);
    },
    { recoveryValueFunc: () => undefined },
  );

  // A whole operator chain in one loop; precedence (`* / %` over `+ -`) is
  // applied when the nodes are built. One rule level instead of two is a
  // measurable share of parsing a 100k-stage file.
  expr = this.RULE(
    'expr',
    (): A.Expr => {
      const first = this.SUBRULE(this.unary);
      const ops: IToken[] = [];
      const operands: A.Expr[] = [first];
      this.MANY(() => {
        ops.push(this.CONSUME(T.BinaryOp));
        operands.push(this.SUBRULE2(this.unary));
      });
      if (ops.length === 0) return first;
      return this.ACTION(() => this.precedence(operands, ops));
    },
    { recoveryValueFunc: () => this.errorExpr() },
  );

  precedence(operands: A.Expr[], ops: IToken[]): A.Expr {
    const src = this.src;
    if (!src) return operands[0]!;
    const filled = ops.map((_, i) => operands[i + 1] ?? this.errorExpr());
    return operatorChain(
      operands[0]!,
      ops.map((t) => ({ op: t.image as A.BinaryOp, opSpan: this.sp(t) })),
      filled,
      (a, b) => this.join(a, b),
    );
  }

  // Unary minus and the postfix forms (`x[...]`, `x.out`) in one rule: one
  // rule call less per operand is measurable on 100k-stage files.
  unary = this.RULE(
    'unary',
    (): A.Expr => {
      const minus: IToken[] = [];
      this.MANY(() => minus.push(this.CONSUME(T.Minus)));
      let e: A.Expr = this.SUBRULE(this.primary);
      this.OPTION(() => {
        this.CONSUME(T.LBracket);
        const selectors: (A.Expr | A.WildcardSelector)[] = [];
        let comma = true;
        this.AT_LEAST_ONE(() => {
          const sel = this.SUBRULE(this.selector);
          this.ACTION(() => this.commaMissing(selectors[selectors.length - 1]?.span, comma));
          selectors.push(sel);
          comma = false;
          this.OPTION1(() => {
            this.CONSUME(T.Comma);
            comma = true;
          });
        });
        const close = this.CONSUME(T.RBracket);
        e = { type: 'Select', span: this.join(e?.span, this.sp(close)), target: e as A.NameExpr, selectors };
      });
      this.OPTION2(() => {
        this.CONSUME(T.Dot);
        const m = this.CONSUME(T.Identifier);
        e = { type: 'Member', span: this.join(e?.span, this.sp(m)), target: e as A.NameExpr, member: m.image, memberSpan: this.sp(m) };
      });
      for (let i = minus.length - 1; i >= 0; i--) {
        e = { type: 'Neg', span: this.join(this.sp(minus[i]), e?.span), operand: e };
      }
      return e;
    },
    { recoveryValueFunc: () => this.errorExpr() },
  );

  selector = this.RULE(
    'selector',
    (): A.Expr | A.WildcardSelector =>
      this.OR([{ ALT: () => ({ type: 'Wildcard' as const, span: this.sp(this.CONSUME(T.Star)) }) }, { ALT: () => this.SUBRULE(this.expr) }]),
    { recoveryValueFunc: () => this.errorExpr() },
  );

  primary = this.RULE(
    'primary',
    (): A.Expr =>
      this.OR([
        {
          ALT: () => {
            const t = this.CONSUME(T.NumberLit);
            return this.ACTION(() => parseNumber(t.image, this.sp(t), this.diags));
          },
        },
        {
          ALT: () => {
            const t = this.CONSUME(T.StringLit);
            return this.ACTION(() => parseString(t.image, this.sp(t), false, this.diags));
          },
        },
        {
          ALT: () => {
            const t = this.CONSUME(T.TripleString);
            return this.ACTION(() => parseString(t.image, this.sp(t), true, this.diags));
          },
        },
        {
          ALT: () => {
            const t = this.OR1([{ ALT: () => this.CONSUME(T.UnterminatedString) }, { ALT: () => this.CONSUME(T.UnterminatedTriple) }]);
            const span = this.sp(t);
            this.ACTION(() =>
              this.diags.push({
                code: 'E0002',
                severity: 'error',
                message: 'unterminated string',
                span: { ...span, length: 1 },
                label: 'this string has no closing quote',
                help: t.tokenType === T.UnterminatedTriple ? 'close it with `"""`' : 'close it with `"` on the same line, or use `"""` for a multi-line string',
              }),
            );
            return { type: 'Error' as const, span };
          },
        },
        { ALT: () => ({ type: 'Bool' as const, span: this.sp(this.CONSUME(T.True)), value: true }) },
        { ALT: () => ({ type: 'Bool' as const, span: this.sp(this.CONSUME(T.False)), value: false }) },
        { ALT: () => ({ type: 'Null' as const, span: this.sp(this.CONSUME(T.Null)) }) },
        { ALT: () => this.SUBRULE(this.list) },
        { ALT: () => this.SUBRULE(this.map) },
        {
          ALT: () => {
            const open = this.CONSUME(T.LParen);
            const expr = this.SUBRULE(this.expr);
            const close = this.CONSUME(T.RParen);
            return { type: 'Paren' as const, span: this.join(this.sp(open), this.sp(close)), expr };
          },
        },
        {
          ALT: () => {
            const name = this.CONSUME(T.Identifier);
            let call: A.CallExpr | undefined;
            this.OPTION(() => {
              this.CONSUME1(T.LParen);
              const args = this.SUBRULE(this.exprList);
              const close = this.CONSUME1(T.RParen);
              call = { type: 'Call', span: this.join(this.sp(name), this.sp(close)), callee: name.image, calleeSpan: this.sp(name), args: args ?? [] };
            });
            return call ?? { type: 'Name' as const, span: this.sp(name), name: name.image };
          },
        },
      ]),
    { recoveryValueFunc: () => this.errorExpr() },
  );

  /** Comma-separated expressions, trailing comma allowed: list items and call arguments. */
  exprList = this.RULE(
    'exprList',
    (): A.Expr[] => {
      const items: A.Expr[] = [];
      let comma = true;
      this.MANY(() => {
        const item = this.SUBRULE(this.expr);
        this.ACTION(() => this.commaMissing(items[items.length - 1]?.span, comma));
        items.push(item);
        comma = false;
        this.OPTION(() => {
          this.CONSUME(T.Comma);
          comma = true;
        });
      });
      return items;
    },
    { recoveryValueFunc: () => [] },
  );

  list = this.RULE('list', (): A.ListExpr => {
    const open = this.CONSUME(T.LBracket);
    const items = this.SUBRULE(this.exprList);
    const close = this.CONSUME(T.RBracket);
    return { type: 'List', span: this.join(this.sp(open), this.sp(close)), items: items ?? [] };
  });

  map = this.RULE('map', (): A.MapExpr => {
    const open = this.CONSUME(T.LBrace);
    const entries: A.MapEntry[] = [];
    this.MANY(() => {
      const k = this.SUBRULE(this.mapKey);
      this.CONSUME(T.Equals);
      const value = this.SUBRULE(this.expr);
      if (k) entries.push({ ...k, value });
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    const close = this.CONSUME(T.RBrace);
    return { type: 'Map', span: this.join(this.sp(open), this.sp(close)), entries };
  });

  mapKey = this.RULE(
    'mapKey',
    (): { key: string; raw: string; keySpan: SourceSpan } | undefined =>
      this.OR([
        {
          ALT: () => {
            const t = this.CONSUME(T.Identifier);
            return { key: t.image, raw: t.image, keySpan: this.sp(t) };
          },
        },
        {
          ALT: () => {
            const t = this.CONSUME(T.StringLit);
            return this.ACTION(() => {
              const s = parseString(t.image, this.sp(t), false, this.diags);
              const text = s.parts.map((p) => (typeof p === 'string' ? p : '')).join('');
              if (s.parts.some((p) => typeof p !== 'string')) {
                this.diags.push({
                  code: 'E0020',
                  severity: 'error',
                  message: 'a map key cannot be interpolated',
                  span: s.span,
                  label: 'keys must be fixed text',
                  help: 'write the key literally, or escape `$` as `\\$`',
                });
              }
              return { key: text, raw: t.image, keySpan: s.span };
            });
          },
        },
      ]),
    { recoveryValueFunc: () => undefined },
  );
}

let parser: SmkeParser | undefined;

const CLOSERS = new Map<TokenType, { open: TokenType; text: string }>([
  [T.RBracket, { open: T.LBracket, text: '[' }],
  [T.RBrace, { open: T.LBrace, text: '{' }],
  [T.RParen, { open: T.LParen, text: '(' }],
]);

/**
 * For "expected `]`": the opening bracket left unclosed before `offset`, so
 * the error can point at both ends (the classic complaint about parsers that
 * blame the wrong brace).
 */
function unclosedOpener(tokens: IToken[], offset: number, closer: TokenType): IToken | undefined {
  const want = CLOSERS.get(closer);
  if (!want) return undefined;
  const stack: IToken[] = [];
  for (const t of tokens) {
    if (t.startOffset >= offset) break;
    const tt = t.tokenType;
    if (tt === T.LBracket || tt === T.LBrace || tt === T.LParen) stack.push(t);
    else if (CLOSERS.has(tt)) {
      const i = stack.map((o) => o.tokenType).lastIndexOf(CLOSERS.get(tt)!.open);
      if (i !== -1) stack.length = i;
    }
  }
  for (let i = stack.length - 1; i >= 0; i--) if (stack[i]!.tokenType === want.open) return stack[i];
  return undefined;
}

/**
 * Checks bracket nesting (and runs of unary minus, which nest the same way)
 * before parsing, because the parser recurses once per level.
 */
function guardDepth(tokens: IToken[], src: SourceFile): Diagnostic | undefined {
  let depth = 0;
  let minusRun = 0;
  for (const t of tokens) {
    const tt = t.tokenType;
    if (tt === T.LBracket || tt === T.LBrace || tt === T.LParen) depth++;
    else if (tt === T.RBracket || tt === T.RBrace || tt === T.RParen) depth = Math.max(0, depth - 1);
    minusRun = tt === T.Minus ? minusRun + 1 : 0;
    if (depth > MAX_DEPTH || minusRun > MAX_DEPTH) {
      return {
        code: 'E0004',
        severity: 'error',
        message: `nesting deeper than ${MAX_DEPTH} levels`,
        span: src.span(t.startOffset, t.image.length),
        label: `level ${MAX_DEPTH + 1} starts here`,
        help: 'flatten the value: a pipeline never needs this much nesting',
      };
    }
  }
  return undefined;
}

export interface ParseResult {
  ast: A.FileAst;
  diagnostics: Diagnostic[];
  /** Parsing was not attempted (nesting too deep): the AST is empty, not wrong. */
  aborted?: boolean;
}

/**
 * Parses one file: the hand-written fast path for a well-formed file, the
 * recovering chevrotain parser for anything else. Never throws on any input.
 */
export function parse(src: SourceFile): ParseResult {
  const fast = fastParseOrFailure(src, MAX_DEPTH);
  if ('ast' in fast) return { ast: fast.ast, diagnostics: [] };
  if (src.text.length <= RECOVERY_WINDOW) return parseWithRecovery(src);
  return parseAroundFailure(src, fast.failure);
}

/**
 * Files larger than this are not handed to the recovering parser whole:
 * chevrotain holds every token (about 100 bytes each), and a 50 MB file of
 * short tokens took 3.5 GB, more than a smaller machine's heap.
 */
export const RECOVERY_WINDOW = 4 * 1024 * 1024;

/**
 * Text as long as `text.slice(0, end)`, with as many line breaks and the last
 * one at the same place, and nothing else but spaces: what follows keeps its
 * offsets, lines and columns, and what precedes is not read again.
 */
function blankBefore(text: string, end: number): string {
  let lines = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < end; i = text.indexOf('\n', i + 1)) lines++;
  if (lines === 0) return ' '.repeat(end);
  const lastBreak = text.lastIndexOf('\n', end - 1);
  return '\n'.repeat(lines - 1) + ' '.repeat(lastBreak - (lines - 1)) + '\n' + ' '.repeat(end - lastBreak - 1);
}

/**
 * A large file with a syntax error: the items before the one the fast path
 * gave up in are kept as it read them, and the recovering parser reads from
 * that item's start up to about RECOVERY_WINDOW characters past the error
 * (cut before a line that starts a top-level item, when there is one). It
 * reads a copy of the file whose earlier text is blanked out, newlines kept,
 * so that every offset, line and column is the file's own. Errors further
 * on are not looked for; a note on the first error says so.
 */
function parseAroundFailure(src: SourceFile, failure: FastFailure): ParseResult {
  const text = src.text;
  let end = Math.min(text.length, failure.at + RECOVERY_WINDOW);
  if (end < text.length) {
    const window = text.slice(failure.at, end);
    const cut = Math.max(...['\nstage ', '\nparam ', '\nprofile ', '\nimport '].map((k) => window.lastIndexOf(k)));
    if (cut > 0) end = failure.at + cut + 1;
  }
  const blanked = blankBefore(text, failure.itemStart) + text.slice(failure.itemStart, end);
  const r = parseWithRecovery(new SourceFile(src.path, blanked));
  // The fast path gave up on something the recovering parser accepts (it is stricter by design): read the whole file.
  if (r.diagnostics.length === 0) return parseWithRecovery(src);
  if (end < text.length) {
    const first = r.diagnostics[0]!;
    const rest = src.position(end);
    first.notes = [
      ...(first.notes ?? []),
      `this file is ${(text.length / 1e6).toFixed(0)} MB: after its first syntax error only the next ${(RECOVERY_WINDOW / 1e6).toFixed(0)} MB were read; ` +
        `errors after line ${rest.line}, column ${rest.column} are not reported until these are fixed`,
    ];
  }
  const ast: A.FileAst = {
    path: src.path,
    version: failure.version ?? r.ast.version,
    items: [...failure.items, ...r.ast.items],
    comments: [...failure.comments, ...r.ast.comments],
  };
  return { ast, diagnostics: r.diagnostics, aborted: r.aborted };
}

/** Lexes and parses one file with chevrotain, reporting every syntax error. Never throws on any input. */
export function parseWithRecovery(src: SourceFile): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const lexed = T.smkeLexer().tokenize(src.text);
  const comments: A.Comment[] = (lexed.groups.comments ?? []).map((c) => ({ text: c.image, offset: c.startOffset, line: c.startLine ?? 1 }));
  const garbage = (lexed.groups.garbage ?? []).map((t) => ({ offset: t.startOffset, length: t.image.length }));
  for (const e of [...garbage, ...lexed.errors].slice(0, MAX_SYNTAX_ERRORS)) {
    const ch = src.text.slice(e.offset, e.offset + 1);
    diagnostics.push({
      code: 'E0002',
      severity: 'error',
      message: `unexpected character \`${ch === '`' ? "'`'" : JSON.stringify(ch).slice(1, -1)}\``,
      span: src.span(e.offset, Math.min(e.length, 40)),
      label: e.length > 1 ? `${e.length} characters the language does not use` : 'not part of the language',
      help: 'comments start with `#`; text belongs in double quotes',
    });
  }
  const ast: A.FileAst = { path: src.path, items: [], comments };
  const deep = guardDepth(lexed.tokens, src);
  if (deep) {
    diagnostics.push(deep);
    return { ast, diagnostics, aborted: true };
  }
  parser ??= new SmkeParser();
  parser.src = src;
  parser.diags = [];
  parser.version = undefined;
  parser.items = [];
  parser.input = lexed.tokens;
  parser.file();
  ast.version = parser.version;
  ast.items = parser.items;
  const seen = new Set<number>();
  for (const err of parser.errors) {
    if (seen.size >= MAX_SYNTAX_ERRORS) break;
    const span = parser.sp(err.token);
    if (seen.has(span.offset)) continue;
    seen.add(span.offset);
    const d: Diagnostic = {
      code: 'E0001',
      severity: 'error',
      message: err.message,
      span: err.token.tokenType === EOF ? src.span(src.text.length, 1) : span,
      label: err.token.tokenType === EOF ? 'the file ends here' : 'unexpected here',
    };
    const expected = /^expected `([\]})])`/.exec(err.message)?.[1];
    if (expected) {
      const closer = expected === ']' ? T.RBracket : expected === '}' ? T.RBrace : T.RParen;
      const opener = unclosedOpener(lexed.tokens, err.token.tokenType === EOF ? Infinity : err.token.startOffset, closer);
      if (opener) d.labels = [{ span: src.span(opener.startOffset, 1), message: `unclosed \`${CLOSERS.get(closer)!.text}\`` }];
    }
    diagnostics.push(d);
  }
  diagnostics.push(...parser.diags.slice(0, MAX_SYNTAX_ERRORS));
  parser.input = [];
  parser.src = undefined;
  diagnostics.sort((a, b) => (a.span?.offset ?? 0) - (b.span?.offset ?? 0));
  return { ast, diagnostics };
}
