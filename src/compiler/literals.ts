// Number and string literals: units (`10GB` -> bytes, `2h` -> seconds),
// escapes, `${name}` interpolation and the indentation rule of `"""` strings.

import type { BinaryExpr, BinaryOp, Expr, Interpolation, NumberExpr, StringExpr } from './ast.js';
import type { Diagnostic } from './diagnostic.js';
import type { SourceSpan } from './plan.js';

export const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};
export const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400 };

export function unitKind(unit: string | undefined): 'size' | 'duration' | undefined {
  if (unit === undefined) return undefined;
  if (Object.hasOwn(SIZE_UNITS, unit)) return 'size';
  if (Object.hasOwn(DURATION_UNITS, unit)) return 'duration';
  return undefined;
}

const NUMBER_RE = /^(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)([A-Za-z_]*)$/;

export function parseNumber(raw: string, span: SourceSpan, diags: Diagnostic[]): NumberExpr {
  const m = NUMBER_RE.exec(raw);
  let digits = m?.[1] ?? raw;
  let unit = m?.[2] || undefined;
  // `1e` / `2E` followed by a unit-like suffix is a malformed exponent, not a unit.
  if (unit && /^[eE]/.test(unit) && !unitKind(unit)) {
    digits = raw;
    unit = undefined;
  }
  let value = Number(digits);
  if (unit !== undefined) {
    const scale = SIZE_UNITS[unit] ?? DURATION_UNITS[unit];
    if (scale === undefined || !Object.hasOwn(unitKind(unit) === 'size' ? SIZE_UNITS : DURATION_UNITS, unit)) {
      diags.push({
        code: 'E0002',
        severity: 'error',
        message: `unknown unit \`${unit}\` in \`${raw}\``,
        span,
        label: 'not a size or duration unit',
        help: 'sizes: B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024); durations: s, m, min, h, d',
      });
      return { type: 'Number', span, raw, value: Number.NaN, unit };
    }
    value *= scale;
  } else if (!Number.isFinite(value)) {
    diags.push({
      code: 'E0002',
      severity: 'error',
      message: `malformed number \`${raw}\``,
      span,
      label: 'not a number',
      help: 'write numbers like 3, 0.5 or 3e-5',
    });
  }
  return { type: 'Number', span, raw, value, unit };
}

const NAME_PATH_RE = /^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*$/;

/**
 * Splits a string token into text and `${...}` parts. In `"..."` strings the
 * escapes are \n \t \r \\ \" \$; in `"""..."""` strings backslashes are
 * literal (shell scripts keep theirs) except `\$`, the first newline is
 * dropped and the common indentation is removed.
 */
/**
 * Builds the node of an interpolation from its path and its place (offset
 * and length in the file). The default one builds a plain node with its span;
 * the fast parser's keeps the place and builds the span when it is read.
 */
export type MakeInterpolation = (path: string[], offset: number, length: number) => Interpolation;

export function parseString(raw: string, span: SourceSpan, triple: boolean, diags: Diagnostic[], makeInterpolation?: MakeInterpolation): StringExpr {
  const q = triple ? 3 : 1;
  const body = raw.slice(q, raw.length - q);
  // Most strings are plain text: one part, and no per-character walk.
  if (!triple && body.indexOf('\\') === -1 && body.indexOf('$') === -1) return { type: 'String', span, raw, parts: [body] };
  const parts: (string | Interpolation)[] = [];
  let text = '';
  const at = (i: number, length: number): SourceSpan => spanInString(raw, span, q, i, length);

  let indent = 0;
  let start = 0;
  let end = body.length;
  if (triple) {
    if (body.startsWith('\n')) start = 1;
    else if (body.startsWith('\r\n')) start = 2;
    const lastNl = body.lastIndexOf('\n');
    if (lastNl >= start && /^[ \t]*$/.test(body.slice(lastNl + 1))) end = lastNl + 1;
    indent = commonIndent(body.slice(start, end));
  }

  let i = start;
  let lineStart = true;
  while (i < end) {
    if (triple && lineStart && indent > 0) {
      let k = 0;
      while (k < indent && i < end && (body[i] === ' ' || body[i] === '\t')) {
        i++;
        k++;
      }
      lineStart = false;
      continue;
    }
    const c = body[i]!;
    lineStart = c === '\n';
    if (c === '\\') {
      const n = body[i + 1];
      if (n === '$') {
        text += '$';
        i += 2;
        continue;
      }
      if (triple) {
        text += c;
        i++;
        continue;
      }
      const esc = n === undefined ? undefined : ESCAPES[n];
      if (esc === undefined) {
        diags.push({
          code: 'E0002',
          severity: 'error',
          message: `unknown escape \`\\${n ?? ''}\` in a string`,
          span: at(i, 2),
          label: 'not an escape',
          help: 'the escapes are \\n \\t \\r \\\\ \\" and \\$; write a backslash as \\\\',
        });
        text += n ?? '';
      } else text += esc;
      i += 2;
      continue;
    }
    if (c === '$' && body[i + 1] === '{') {
      const close = body.indexOf('}', i + 2);
      const nl = body.indexOf('\n', i + 2);
      if (close === -1 || (nl !== -1 && nl < close)) {
        diags.push({
          code: 'E0020',
          severity: 'error',
          message: 'unclosed `${` in a string',
          span: at(i, 2),
          label: 'this interpolation has no `}`',
          help: 'close it as `${name}`, or write a literal `$` as `\\$`',
        });
        text += body.slice(i, end);
        break;
      }
      const inner = body.slice(i + 2, close);
      const m = NAME_PATH_RE.exec(inner);
      if (!m) {
        diags.push({
          code: 'E0020',
          severity: 'error',
          message: `invalid interpolation \`\${${inner.length > 30 ? `${inner.slice(0, 27)}...` : inner}}\``,
          span: at(i, close - i + 1),
          label: 'only a name can be interpolated',
          help: 'interpolate a parameter or matrix variable (`${lr}`); compute other values in a `param` first. A literal `${` is written `\\${`',
        });
      } else {
        if (text) parts.push(text);
        text = '';
        const path = m[2] ? [m[1]!, m[2]] : [m[1]!];
        parts.push(makeInterpolation ? makeInterpolation(path, span.offset + q + i, close - i + 1) : { path, span: at(i, close - i + 1) });
      }
      i = close + 1;
      continue;
    }
    if (c === '\n') {
      text += c;
      i++;
      continue;
    }
    // Copy the run up to the next character that needs attention in one step.
    let j = i + 1;
    while (j < end) {
      const cj = body.charCodeAt(j);
      if (cj === 92 || cj === 36 || cj === 10) break;
      j++;
    }
    text += body.slice(i, j);
    i = j;
  }
  if (text || parts.length === 0) parts.push(text);
  return { type: 'String', span, raw, parts: parts.slice() };
}

/**
 * The span of `length` characters at `i` in a string's body. Interpolations
 * in one-line strings sit on the token's line; in multi-line strings the
 * column is recomputed from the line start.
 */
function spanInString(raw: string, span: SourceSpan, q: number, i: number, length: number): SourceSpan {
  const before = raw.slice(0, q + i);
  const nl = before.lastIndexOf('\n');
  const line = span.line + (nl === -1 ? 0 : countNewlines(before));
  const column = nl === -1 ? span.column + q + i : before.length - nl;
  return { file: span.file, line, column, offset: span.offset + q + i, length };
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"' };

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

function commonIndent(s: string): number {
  let min = Infinity;
  for (const line of s.split('\n')) {
    if (/^[ \t]*\r?$/.test(line)) continue;
    const m = /^[ \t]*/.exec(line)!;
    min = Math.min(min, m[0].length);
  }
  return Number.isFinite(min) ? min : 0;
}

/** The text of a string with no interpolations, or undefined. */
export function plainText(s: StringExpr): string | undefined {
  return s.parts.every((p) => typeof p === 'string') ? (s.parts as string[]).join('') : undefined;
}

/**
 * The AST of an operator chain `first op1 r1 op2 r2 ...` read left to right:
 * `* / %` bind tighter than `+ -`, both left-associative, each precedence
 * level kept as one flat BinaryExpr.
 */
export function operatorChain(
  first: Expr,
  ops: { op: BinaryOp; opSpan: SourceSpan }[],
  rights: Expr[],
  join: (a: SourceSpan | undefined, b: SourceSpan | undefined) => SourceSpan,
): Expr {
  const terms: { first: Expr; rest: BinaryExpr['rest'] }[] = [{ first, rest: [] }];
  const additive: { op: BinaryOp; opSpan: SourceSpan }[] = [];
  ops.forEach(({ op, opSpan }, i) => {
    const right = rights[i]!;
    if (op === '*' || op === '/' || op === '%') terms[terms.length - 1]!.rest.push({ op, opSpan, right });
    else {
      additive.push({ op, opSpan });
      terms.push({ first: right, rest: [] });
    }
  });
  const exprs = terms.map((t): Expr =>
    t.rest.length === 0 ? t.first : { type: 'Binary', span: join(t.first?.span, t.rest[t.rest.length - 1]!.right?.span), first: t.first, rest: t.rest },
  );
  if (additive.length === 0) return exprs[0]!;
  return {
    type: 'Binary',
    span: join(exprs[0]?.span, exprs[exprs.length - 1]?.span),
    first: exprs[0]!,
    rest: additive.map((a, i) => ({ ...a, right: exprs[i + 1]! })),
  };
}
