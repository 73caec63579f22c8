// Evaluation of expressions to Values: names, env(), interpolation,
// arithmetic, concatenation, and references to other stages' outputs (which
// stay symbolic as OutputRefs). Every failure is reported once, where it
// happens, and yields BAD so that callers neither crash nor repeat it.

import type * as A from './ast.js';
import type { Diagnostics } from './diagnostic.js';
import { duplicates } from './dups.js';
import { isOutputRef, type OutputRef, type SourceSpan, type Value } from './plan.js';
import { didYouMean } from './suggest.js';

/** The result of an expression whose error has already been reported. */
export const BAD: unique symbol = Symbol('bad');
export type Result = Value | typeof BAD;

/** A stage as references see it: its name, its matrix axes and the ids of its instances. */
export interface StageEntry {
  name: string;
  decl: A.StageDecl;
  axes: string[];
  /** Instance ids; for a plain stage, just its name. */
  ids: string[];
  /** Formatted axis values joined by `,` -> instance id. */
  byKey: ReadonlyMap<string, string>;
  /** The matrix could not be expanded (already reported): references to it stay quiet. */
  broken?: boolean;
  /** Each instance's formatted axis values, in axis order. */
  cells: { id: string; values: string[] }[];
}

/**
 * Every reference evaluated in `stage` mode, in order, and where it was
 * written: the runtime gets the ref (the very object inside the params'
 * OutputRef), diagnostics get the expression's spans. Two parallel lists for
 * the whole compile rather than an object per reference and a list per
 * instance: a large pipeline has hundreds of thousands of references.
 */
export class RefSites {
  readonly refs: OutputRef['$ref'][] = [];
  readonly exprs: A.MemberExpr[] = [];

  get length(): number {
    return this.refs.length;
  }

  add(ref: OutputRef['$ref'], expr: A.MemberExpr): void {
    this.refs.push(ref);
    this.exprs.push(expr);
  }
}

export interface EvalEnv {
  diags: Diagnostics;
  /** `param`: pipeline parameters and matrix axes (no stage references); `stage`: a stage's entries; `after`: stage names. */
  mode: 'param' | 'stage' | 'after';
  matrix?: Map<string, Value>;
  /** A pipeline parameter's value; `at` is where it is used, read only to report a cycle. */
  param(name: string, at: Spanned): Result | undefined;
  hasParam(name: string): boolean;
  paramNames(): Iterable<string>;
  stage(name: string): StageEntry | undefined;
  stageNames(): Iterable<string>;
  /** Receives every reference evaluated in `stage` mode. */
  refs?: RefSites;
  /** Receives the instance ids named in `after` mode. */
  afterIds?: { id: string; span: SourceSpan }[];
  env: Record<string, string | undefined>;
  /** Parses text as a literal of the language (for env() values), or undefined if it is not one. */
  literal(text: string): Value | undefined;
}

export function describeValue(v: Value): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (isOutputRef(v)) return 'a reference to a stage output';
  switch (typeof v) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return 'a map';
  }
}

/**
 * Characters that would make an instance id ambiguous or hard to pass on a
 * command line: the id's own separators (`,` `[` `]`), quotes and
 * backslashes, `*` (the wildcard), white space and control characters.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be quoted
const NEEDS_QUOTES = /[,[\]"\\*\s\x00-\x1f\x7f]/;

/**
 * How an axis value appears in an instance id: `glue[cola]`, `sweep[0.1,3]`.
 * A string that is empty or holds a character of NEEDS_QUOTES is written as a
 * JSON string (`s["a,b",c]`), so the values of an id can always be told
 * apart: two cells get the same id only if, axis by axis, their values are
 * written alike, which only a string and a number (`"1"` and `1`) or a
 * boolean (`"true"` and `true`) can be; build.ts refuses those pairs.
 */
export function formatAxisValue(v: Value): string {
  if (typeof v !== 'string') return JSON.stringify(v);
  return v === '' || NEEDS_QUOTES.test(v) ? JSON.stringify(v) : v;
}

export function isScalar(v: Value): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** A selection of matrix instances (`glue[cola]`, `glue[*]`) before `.output` is applied. */
class Selection {
  constructor(
    readonly stage: StageEntry,
    readonly ids: string[],
    readonly many: boolean,
  ) {}
}

type Inner = Result | Selection;

export function evaluate(e: A.Expr, env: EvalEnv): Result {
  const v = evalInner(e, env);
  if (v instanceof Selection) {
    if (env.mode === 'after') {
      for (const id of v.ids) env.afterIds?.push({ id, span: e.span });
      return null;
    }
    env.diags.error('E0010', `\`${v.stage.name}\` selects stage instances, not an output`, e.span, {
      label: 'an output name is missing',
      help: `add the output: \`${exprText(e)}.OUTPUT\`; \`smke kinds ${v.stage.decl.kind}\` lists the outputs`,
    });
    return BAD;
  }
  return v;
}

function exprText(e: A.Expr): string {
  if (e.type === 'Name') return e.name;
  if (e.type === 'Select') return `${exprText(e.target)}[...]`;
  return '...';
}

function knownNames(env: EvalEnv): string[] {
  const names = [...env.paramNames()];
  if (env.matrix) names.push(...env.matrix.keys());
  if (env.mode !== 'param') names.push(...env.stageNames());
  return names;
}

/**
 * Anything with a span: a node, whose span is built only when read (see
 * compact-nodes.ts), so lookups that succeed never build one.
 */
export interface Spanned {
  readonly span: SourceSpan;
}

function lookupName(name: string, at: Spanned, env: EvalEnv): Result | undefined {
  if (env.matrix?.has(name)) return env.matrix.get(name)!;
  return env.param(name, at);
}

function unknownName(name: string, span: SourceSpan, env: EvalEnv): typeof BAD {
  const what = env.mode === 'param' ? 'a parameter' : 'a parameter, matrix variable or stage';
  env.diags.error('E0008', `unknown name \`${name}\``, span, {
    label: `not ${what}`,
    help: (env.diags.full ? undefined : didYouMean(name, knownNames(env))) ?? 'declare it with `param NAME = value`, or check the spelling',
  });
  return BAD;
}

function evalInner(e: A.Expr, env: EvalEnv): Inner {
  switch (e.type) {
    case 'Number':
      return Number.isFinite(e.value) ? e.value : BAD;
    case 'Bool':
      return e.value;
    case 'Null':
      return null;
    case 'Error':
      return BAD;
    case 'String':
      return evalString(e, env);
    case 'Paren':
      return evalInner(e.expr, env);
    case 'List': {
      // Sized up front: a list grown by push keeps room for 16 elements, and
      // the values of a large pipeline's params live for the whole run.
      const out: Value[] = new Array<Value>(env.mode === 'after' ? 0 : e.items.length);
      let bad = false;
      for (let i = 0; i < e.items.length; i++) {
        const v = evaluate(e.items[i]!, env);
        if (v === BAD) bad = true;
        else if (env.mode !== 'after') out[i] = v;
      }
      return bad ? BAD : out;
    }
    case 'Map': {
      const out: Record<string, Value> = {};
      const dups = duplicates(
        e.entries,
        (m) => m.key,
        (m, first) =>
          env.diags.error('E0007', `duplicate key \`${m.key}\` in a map`, m.keySpan, {
            label: 'defined again here',
            labels: [{ span: first.keySpan, message: 'first defined here' }],
            help: 'remove one of them',
          }),
      );
      let bad = dups !== undefined;
      for (const entry of e.entries) {
        if (dups?.has(entry)) continue;
        const v = evaluate(entry.value, env);
        if (v === BAD) bad = true;
        else out[entry.key] = v;
      }
      return bad ? BAD : out;
    }
    case 'Name': {
      const v = lookupName(e.name, e, env);
      if (v !== undefined) return v;
      const st = env.mode === 'param' ? undefined : env.stage(e.name);
      if (st) {
        if (env.mode === 'after') return new Selection(st, st.ids, true);
        env.diags.error('E0010', `\`${e.name}\` is a stage, not a value`, e.span, {
          label: 'a stage output is needed here',
          help: `reference one of its outputs, e.g. \`${e.name}.out\`; \`smke kinds ${st.decl.kind}\` lists them`,
        });
        return BAD;
      }
      if (env.mode === 'param' && env.stage(e.name)) {
        env.diags.error('E0013', `a parameter cannot refer to stage \`${e.name}\``, e.span, {
          label: 'parameters are known before any stage runs',
          help: 'reference the stage output in the stage that needs it',
        });
        return BAD;
      }
      return unknownName(e.name, e.span, env);
    }
    case 'Call':
      return evalCall(e, env);
    case 'Neg': {
      const v = evaluate(e.operand, env);
      if (v === BAD) return BAD;
      if (typeof v !== 'number') {
        env.diags.error('E0013', `cannot negate ${describeValue(v)}`, e.operand.span, {
          label: `this is ${describeValue(v)}`,
          help: 'unary `-` applies to numbers only',
        });
        return BAD;
      }
      return -v;
    }
    case 'Binary':
      return evalBinary(e, env);
    case 'Select':
      return evalSelect(e, env);
    case 'Member':
      return evalMember(e, env);
  }
}

function evalString(e: A.StringExpr, env: EvalEnv): Result {
  let out = '';
  let bad = false;
  for (const part of e.parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const [head, field] = part.path as [string, string | undefined];
    const v = lookupName(head, part, env);
    if (v === undefined) {
      if (env.stage(head)) {
        env.diags.error('E0020', 'a stage output cannot be interpolated into a string', part.span, {
          label: 'its path is known only when the stage runs',
          help: `pass the reference as a value of its own, e.g. a separate argv element \`${head}.${field ?? 'out'}\``,
        });
      } else unknownName(head, part.span, env);
      bad = true;
      continue;
    }
    if (v === BAD) {
      bad = true;
      continue;
    }
    if (field !== undefined) {
      env.diags.error('E0013', `\`${head}\` is ${describeValue(v)}; it has no field \`${field}\``, part.span, {
        label: 'only stages have outputs',
        help: `interpolate \`\${${head}}\` itself`,
      });
      bad = true;
      continue;
    }
    if (!isScalar(v)) {
      env.diags.error('E0013', `cannot interpolate ${describeValue(v)} into a string`, part.span, {
        label: `\`${head}\` is ${describeValue(v)}`,
        help: 'only strings, numbers and booleans can be interpolated',
      });
      bad = true;
      continue;
    }
    out += String(v);
  }
  return bad ? BAD : out;
}

function evalCall(e: A.CallExpr, env: EvalEnv): Result {
  if (e.callee !== 'env') {
    env.diags.error('E0016', `unknown function \`${e.callee}\``, e.calleeSpan, {
      label: 'not a function',
      help: didYouMean(e.callee, ['env']) ?? 'the only function is `env("NAME", default)`',
    });
    return BAD;
  }
  if (e.args.length < 1 || e.args.length > 2) {
    env.diags.error('E0016', `\`env\` takes 1 or 2 arguments, found ${e.args.length}`, e.span, {
      label: 'wrong number of arguments',
      help: 'write `env("NAME")` or `env("NAME", default)`',
    });
    return BAD;
  }
  const name = evaluate(e.args[0]!, env);
  const def = e.args[1] ? evaluate(e.args[1], env) : undefined;
  if (name === BAD || def === BAD) return BAD;
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    env.diags.error('E0016', 'the first argument of `env` must be a variable name', e.args[0]!.span, {
      label: `this is ${typeof name === 'string' ? `\`${name}\`` : describeValue(name)}`,
      help: 'write the name as a string, e.g. `env("SMKE_DATA", "data")`',
    });
    return BAD;
  }
  const raw = env.env[name];
  if (raw === undefined) {
    if (def !== undefined) return def;
    env.diags.error('E0016', `environment variable \`${name}\` is not set and has no default`, e.span, {
      label: 'needs a value',
      help: `set ${name}, or give a default: \`env("${name}", "...")\``,
    });
    return BAD;
  }
  // A non-string default says what type the variable holds: `env("STEPS", 100)` with STEPS=200 is the number 200.
  if (def !== undefined && typeof def !== 'string') {
    const lit = env.literal(raw);
    if (lit !== undefined) return lit;
  }
  return raw;
}

const OP_NAMES: Record<A.BinaryOp, string> = { '+': 'add', '-': 'subtract', '*': 'multiply', '/': 'divide', '%': 'take the remainder of' };

/**
 * A chain `a op b op c ...`, left to right, in time linear in its length: a
 * long `+` chain of strings must not copy (or flatten) the text so far at
 * every step, nor a chain of lists copy the list so far.
 */
function evalBinary(e: A.BinaryExpr, env: EvalEnv): Result {
  let acc = evaluate(e.first, env);
  /** The last operand folded into `acc`: only an error message needs acc's span. */
  let last: A.Expr = e.first;
  /** `acc` is a list made by this chain, so it may grow in place. */
  let ownList = false;
  for (const { op, opSpan, right } of e.rest) {
    const r = evaluate(right, env);
    if (acc === BAD || r === BAD) {
      acc = BAD;
      continue;
    }
    if (op === '+' && Array.isArray(acc) && Array.isArray(r) && !isOutputRef(acc)) {
      if (!ownList) acc = acc.slice();
      for (const x of r) acc.push(x);
      ownList = true;
    } else {
      const next = applyOp(op, acc, r);
      if (next instanceof Invalid) {
        const first = e.first.span;
        const end = last.span;
        const accSpan = last === e.first ? first : { ...first, length: end.offset + end.length - first.offset };
        env.diags.error('E0013', `cannot ${OP_NAMES[op]} ${describeValue(acc)} and ${describeValue(r)}`, opSpan, {
          label: next.why,
          labels: [
            { span: accSpan, message: describeValue(acc) },
            { span: right.span, message: describeValue(r) },
          ],
          help:
            isOutputRef(acc) || isOutputRef(r) || (Array.isArray(acc) && acc.some(isOutputRef))
              ? 'a stage output is a path known only at run time: pass it as a value of its own'
              : '`+` adds numbers, joins strings (a number joins as text) and concatenates lists; `- * / %` take numbers',
        });
        acc = BAD;
        continue;
      }
      acc = next;
      ownList = false;
    }
    last = right;
  }
  return acc;
}

/** Why an operation is not defined for its operands. */
class Invalid {
  constructor(readonly why: string) {}
}

/** The result, or why the operation is invalid. */
function applyOp(op: A.BinaryOp, a: Value, b: Value): Value | Invalid {
  if (isOutputRef(a) || isOutputRef(b)) return new Invalid('not allowed on a stage output');
  if (typeof a === 'number' && typeof b === 'number') {
    switch (op) {
      case '+':
        return a + b;
      case '-':
        return a - b;
      case '*':
        return a * b;
      case '/':
        return b === 0 ? new Invalid('division by zero') : a / b;
      case '%':
        return b === 0 ? new Invalid('division by zero') : a % b;
    }
  }
  if (op === '+') {
    if (typeof a === 'string' && isScalar(b)) return a + String(b);
    if (typeof b === 'string' && isScalar(a)) return String(a) + b;
    if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  }
  return new Invalid('not defined for these types');
}

function evalSelect(e: A.SelectExpr, env: EvalEnv): Inner {
  if (e.target.type !== 'Name') {
    env.diags.error('E0015', 'only a matrix stage can be indexed', e.span, {
      label: 'not a stage name',
      help: 'select matrix instances as `stage[value]` or `stage[*]`; lists cannot be indexed',
    });
    return BAD;
  }
  const name = e.target.name;
  const st = env.mode === 'param' ? undefined : env.stage(name);
  if (!st) {
    const local = lookupName(name, e.target, env);
    if (local === BAD) return BAD;
    // A map parameter is looked up by key (`lr[task]` in a matrix stage), so a
    // sweep can take one setting per instance from a parameter per instance.
    if (local !== undefined && isMap(local)) return lookupKey(name, local, e, env);
    if (local !== undefined) {
      env.diags.error('E0015', `\`${name}\` is not a matrix stage and cannot be indexed`, e.target.span, {
        label: 'a parameter',
        help: 'only matrix stages are indexed: `stage[value]`',
      });
      return BAD;
    }
    return unknownName(name, e.target.span, env);
  }
  if (st.broken) return BAD;
  if (st.axes.length === 0) {
    env.diags.error('E0015', `\`${name}\` is not a matrix stage`, e.span, {
      label: 'it has a single instance',
      help: `refer to it without brackets: \`${name}\``,
    });
    return BAD;
  }
  if (e.selectors.length === 1 && e.selectors[0]!.type === 'Wildcard') return new Selection(st, st.ids, true);
  if (e.selectors.length !== st.axes.length) {
    env.diags.error(
      'E0015',
      `\`${name}\` has ${st.axes.length} matrix ${st.axes.length === 1 ? 'axis' : 'axes'} (${st.axes.join(', ')}), but ${e.selectors.length} ${e.selectors.length === 1 ? 'value is' : 'values are'} given`,
      e.span,
      { label: 'wrong number of values', help: `give one value or \`*\` per axis, or \`${name}[*]\` for all instances` },
    );
    return BAD;
  }
  const patterns: (string | undefined)[] = [];
  let bad = false;
  for (const sel of e.selectors) {
    if (sel.type === 'Wildcard') {
      patterns.push(undefined);
      continue;
    }
    // A bare word that names nothing in scope is the value itself: `glue[cola]`.
    let v: Result;
    if (sel.type === 'Name' && !env.matrix?.has(sel.name) && !env.hasParam(sel.name)) v = sel.name;
    else v = evaluate(sel, env);
    if (v === BAD) {
      bad = true;
      continue;
    }
    if (!isScalar(v) && v !== null) {
      env.diags.error('E0015', `an instance is selected by a matrix value, not ${describeValue(v)}`, sel.span, {
        label: describeValue(v),
        help: 'write the axis value, e.g. `glue[cola]` or `sweep[0.1, 3]`',
      });
      bad = true;
      continue;
    }
    patterns.push(formatAxisValue(v));
  }
  if (bad) return BAD;
  if (patterns.every((p) => p !== undefined)) {
    const key = patterns.join(',');
    const id = st.byKey.get(key);
    if (id === undefined) {
      env.diags.error('E0015', `no instance \`${name}[${key}]\``, e.span, {
        label: `not among the ${st.ids.length} instances of \`${name}\``,
        help: (env.diags.full ? undefined : didYouMean(`${name}[${key}]`, st.ids)) ?? `the instances are ${listIds(st.ids)}`,
      });
      return BAD;
    }
    return new Selection(st, [id], false);
  }
  const ids: string[] = [];
  for (const cell of st.cells) {
    if (patterns.every((p, i) => p === undefined || p === cell.values[i])) ids.push(cell.id);
  }
  if (ids.length === 0) {
    env.diags.error('E0015', `no instance of \`${name}\` matches`, e.span, {
      label: 'selects nothing',
      help: `the instances are ${listIds(st.ids)}`,
    });
    return BAD;
  }
  return new Selection(st, ids, true);
}

function isMap(v: Result): v is { [k: string]: Value } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !isOutputRef(v);
}

function lookupKey(name: string, map: { [k: string]: Value }, e: A.SelectExpr, env: EvalEnv): Result {
  const sel = e.selectors[0]!;
  if (e.selectors.length !== 1 || sel.type === 'Wildcard') {
    env.diags.error('E0015', `the map \`${name}\` is indexed by one key`, e.span, { label: 'one key expected', help: `write \`${name}[key]\`` });
    return BAD;
  }
  // As for matrix selectors, a bare word that names nothing in scope is the key itself.
  const k = sel.type === 'Name' && !env.matrix?.has(sel.name) && !env.hasParam(sel.name) ? sel.name : evaluate(sel, env);
  if (k === BAD) return BAD;
  if (typeof k !== 'string' || !Object.prototype.hasOwnProperty.call(map, k)) {
    const keys = Object.keys(map);
    env.diags.error('E0015', `the map \`${name}\` has no key ${typeof k === 'string' ? `\`${k}\`` : describeValue(k)}`, sel.span, {
      label: 'not a key of the map',
      help: (typeof k === 'string' ? didYouMean(k, keys) : undefined) ?? `its keys are ${listIds(keys)}`,
    });
    return BAD;
  }
  return map[k]!;
}

function listIds(ids: string[]): string {
  const shown = ids.slice(0, 6).map((i) => `\`${i}\``);
  return ids.length > 6 ? `${shown.join(', ')}, ... (${ids.length} in all)` : shown.join(', ');
}

function evalMember(e: A.MemberExpr, env: EvalEnv): Result {
  let target: Inner;
  if (e.target.type === 'Name') {
    const name = e.target.name;
    const local = lookupName(name, e.target, env);
    if (local !== undefined) {
      if (local === BAD) return BAD;
      env.diags.error('E0013', `\`${name}\` is ${describeValue(local)}, not a stage; it has no output \`${e.member}\``, e.span, {
        label: 'not a stage',
        help: env.stage(name) ? `a parameter named \`${name}\` hides the stage of that name: rename one` : 'only stages have outputs',
      });
      return BAD;
    }
    const st = env.stage(name);
    if (env.mode === 'param') {
      if (st) {
        env.diags.error('E0013', `a parameter cannot refer to stage \`${name}\``, e.span, {
          label: 'parameters are known before any stage runs',
          help: 'reference the stage output in the stage that needs it',
        });
        return BAD;
      }
      return unknownName(name, e.target.span, env);
    }
    if (!st) return unknownName(name, e.target.span, env);
    if (st.broken) return BAD;
    if (st.axes.length > 0) {
      env.diags.error('E0015', `\`${name}\` is a matrix stage: choose its instances`, e.target.span, {
        label: `${st.ids.length} instances`,
        help: `write \`${name}[${st.axes.map(() => '...').join(', ')}].${e.member}\` for one instance, or \`${name}[*].${e.member}\` for all`,
      });
      return BAD;
    }
    target = new Selection(st, st.ids, false);
  } else if (e.target.type === 'Select') target = evalSelect(e.target, env);
  else {
    env.diags.error('E0013', `only a stage has outputs such as \`${e.member}\``, e.span, {
      label: 'not a stage',
      help: 'write `stage.output`',
    });
    return BAD;
  }
  if (target === BAD) return BAD;
  if (!(target instanceof Selection)) return BAD;
  if (env.mode === 'after') {
    env.diags.error('E0021', '`after` lists stages, not outputs', e.span, {
      label: 'an output',
      help: `write the stage alone: \`${exprText(e.target)}\``,
    });
    return BAD;
  }
  if (!target.many) return outputRef(target.ids[0]!, e, env);
  const refs: OutputRef[] = [];
  for (const instance of target.ids) refs.push(outputRef(instance, e, env));
  return refs;
}

function outputRef(instance: string, e: A.MemberExpr, env: EvalEnv): OutputRef {
  const ref = { instance, output: e.member };
  env.refs?.add(ref, e);
  return { $ref: ref };
}
