// Text typed outside a .smke file (`--set lr=3e-5`, an env() value) read as a
// literal of the language when it is one: numbers with units, quoted
// strings, booleans, lists and maps of literals. Anything else is a string.

import type { Expr } from './ast.js';
import { Diagnostics } from './diagnostic.js';
import { BAD, evaluate, type EvalEnv } from './evaluate.js';
import { parse } from './parser.js';
import type { Value } from './plan.js';
import { SourceFile } from './source.js';

function isLiteral(e: Expr): boolean {
  switch (e.type) {
    case 'Number':
    case 'Bool':
    case 'Null':
      return true;
    case 'String':
      return e.parts.every((p) => typeof p === 'string');
    case 'Neg':
      return isLiteral(e.operand);
    case 'Paren':
      return isLiteral(e.expr);
    case 'List':
      return e.items.every(isLiteral);
    case 'Map':
      return e.entries.every((m) => isLiteral(m.value));
    default:
      return false;
  }
}

/** The value of `text` as a literal, or undefined when it is not one (the caller then takes it as a string). */
export function parseLiteral(text: string): Value | undefined {
  if (text.trim() === '' || text.length > 1_000_000) return undefined;
  const { ast, diagnostics } = parse(new SourceFile('<literal>', `smke 1\nparam v = ${text}\n`));
  const item = ast.items[0];
  if (diagnostics.length > 0 || ast.items.length !== 1 || item?.type !== 'Param' || !isLiteral(item.value)) return undefined;
  const diags = new Diagnostics();
  const env: EvalEnv = {
    diags,
    mode: 'param',
    param: () => undefined,
    hasParam: () => false,
    paramNames: () => [],
    stage: () => undefined,
    stageNames: () => [],
    env: {},
    literal: () => undefined,
  };
  const v = evaluate(item.value, env);
  return v === BAD || diags.hasErrors ? undefined : v;
}
