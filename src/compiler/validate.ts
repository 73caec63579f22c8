// Checks a stage instance's parameters against its kind's JSON Schema with
// ajv, filling in the schema's defaults. Each kind's schema is compiled once,
// on first use. References to other stages' outputs become absolute paths at
// run time, so they are validated as path strings.

import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { Entry, Expr } from './ast.js';
import type { Diagnostics } from './diagnostic.js';
import type { JsonSchema, KindInfo } from './kind-catalog.js';
import { isOutputRef, type OutputRef, type SourceSpan, type Value } from './plan.js';
import { didYouMean } from './suggest.js';

// ajv (and ajv-formats, only for a schema that uses `format`) are loaded on
// first use, synchronously: `smke fmt` and `smke kinds` never pay for them,
// and `smke check` pays for ajv-formats only if some kind needs it.
const require = createRequire(import.meta.url);
let ajv: Ajv | undefined;
let formats = false;
const validators = new WeakMap<KindInfo, ValidateFunction | Error>();

function ajvFor(schema: JsonSchema): Ajv {
  if (!ajv) {
    const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
    // verbose: errors carry their parentSchema, from which messages say what was expected.
    ajv = new AjvClass({ useDefaults: true, allErrors: true, strict: false, logger: false, verbose: true });
  }
  if (!formats && JSON.stringify(schema).includes('"format"')) {
    const plugin = require('ajv-formats') as { default?: (a: Ajv) => Ajv } & ((a: Ajv) => Ajv);
    (plugin.default ?? plugin)(ajv);
    formats = true;
  }
  return ajv;
}

function validatorFor(kind: KindInfo): ValidateFunction | Error {
  let v = validators.get(kind);
  if (!v) {
    try {
      v = ajvFor(kind.params).compile(kind.params);
    } catch (e) {
      v = e instanceof Error ? e : new Error(String(e));
    }
    validators.set(kind, v);
  }
  return v;
}

/** What a reference looks like to the schema: a path, which is what it becomes at run time. */
const REF_PLACEHOLDER = '/__smke_ref__';

/** Where hideRefs put placeholders: container and key of each, with the ref that was there. */
interface HiddenRefs {
  containers: (Value[] | Record<string, Value>)[];
  keys: (number | string)[];
  refs: OutputRef[];
}

/** Replaces every OutputRef inside `v` (in place) by a path-like placeholder, remembering where. */
function hideRefs(v: Value, hidden: HiddenRefs): void {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      if (isOutputRef(x)) hide(v, i, x, hidden);
      else if (x !== null && typeof x === 'object') hideRefs(x, hidden);
    }
  } else if (v !== null && typeof v === 'object') {
    const o = v as Record<string, Value>;
    for (const k in o) {
      const x = o[k]!;
      if (isOutputRef(x)) hide(o, k, x, hidden);
      else if (x !== null && typeof x === 'object') hideRefs(x, hidden);
    }
  }
}

function hide(container: Value[] | Record<string, Value>, key: number | string, ref: OutputRef, hidden: HiddenRefs): void {
  hidden.containers.push(container);
  hidden.keys.push(key);
  hidden.refs.push(ref);
  (container as Record<string | number, Value>)[key] = REF_PLACEHOLDER;
}

/**
 * Puts the refs back where hideRefs found them: validation only adds
 * defaults, so every placeholder is still in its place, and nothing else
 * needs walking.
 */
function restoreRefs(hidden: HiddenRefs): void {
  for (let i = 0; i < hidden.refs.length; i++) (hidden.containers[i] as Record<string | number, Value>)[hidden.keys[i]!] = hidden.refs[i]!;
}

export interface ValidationSite {
  kind: KindInfo;
  /** The stage body's entries (searched only when there is an error to place). */
  entries: Entry[];
  /** The stage, for where to point when a parameter is missing (its span is built only then). */
  stage: { readonly nameSpan: SourceSpan };
}

/** The parameters with defaults filled in, or undefined when they do not match the schema (reported). */
export function validateParams(params: Record<string, Value>, hasRefs: boolean, site: ValidationSite, diags: Diagnostics): Record<string, Value> | undefined {
  const validate = validatorFor(site.kind);
  if (validate instanceof Error) {
    diags.error('E0012', `the parameter schema of kind \`${site.kind.name}\` is invalid: ${validate.message}`, site.stage.nameSpan, {
      label: 'cannot check these parameters',
      help: 'this is a bug in the stage kind: report it to its author',
    });
    return undefined;
  }
  // Validated (and defaulted) in place, references swapped for placeholders
  // and back: the params are this instance's own, and copying them would
  // double the allocation of a 100k-stage compile.
  const hidden: HiddenRefs | undefined = hasRefs ? { containers: [], keys: [], refs: [] } : undefined;
  if (hidden) hideRefs(params, hidden);
  const ok = validate(params);
  if (hidden) restoreRefs(hidden);
  if (ok) return params;
  report(validate.errors ?? [], site, diags);
  return undefined;
}

function report(errors: ErrorObject[], site: ValidationSite, diags: Diagnostics): void {
  // Inside anyOf/oneOf every branch's failure is listed; the one useful message is "matches none of the forms".
  const alts = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const shown = errors.filter(
    (e) =>
      e.keyword === 'anyOf' ||
      e.keyword === 'oneOf' ||
      !alts.some((a) => e.schemaPath.startsWith(a.schemaPath.replace(/\/(anyOf|oneOf)$/, '')) && e.schemaPath.includes(`/${a.keyword}/`)),
  );
  const kindName = site.kind.name;
  const known = Object.keys((site.kind.params.properties as Record<string, unknown> | undefined) ?? {});
  for (const e of shown) {
    const path = e.instancePath
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (e.keyword === 'additionalProperties' && path.length === 0) {
      const name = String((e.params as { additionalProperty: string }).additionalProperty);
      const entry = site.entries.find((x) => x.key === name);
      diags.error('E0012', `unknown parameter \`${name}\` for kind \`${kindName}\``, entry?.keySpan ?? site.stage.nameSpan, {
        label: 'not a parameter of this kind',
        help: didYouMean(name, known) ?? `the parameters of \`${kindName}\` are ${known.map((k) => `\`${k}\``).join(', ')}`,
      });
      continue;
    }
    if (e.keyword === 'required' && path.length === 0) {
      const name = String((e.params as { missingProperty: string }).missingProperty);
      const schema = (site.kind.params.properties as Record<string, JsonSchema> | undefined)?.[name];
      diags.error('E0012', `missing parameter \`${name}\` for kind \`${kindName}\``, site.stage.nameSpan, {
        label: `needs \`${name}\``,
        help: `add \`${name} = ...\`${schema ? ` (${describeSchema(schema)})` : ''}`,
      });
      continue;
    }
    const where = pathText(path);
    const top = site.entries.find((x) => x.key === path[0]);
    const node = findNode(top, path.slice(1));
    const span = node?.span ?? top?.keySpan ?? site.stage.nameSpan;
    const expected =
      e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'type' || e.keyword === 'enum' || e.keyword === 'const'
        ? `must be ${describeSchema((e.parentSchema ?? {}) as JsonSchema)}`
        : (e.message ?? 'is invalid');
    diags.error('E0012', `invalid value for \`${where}\`: ${expected}`, span, {
      label: node && e.keyword !== 'anyOf' && e.keyword !== 'type' ? (e.message ?? 'invalid') : `does not match \`${kindName}\`'s schema`,
      help: `\`smke kinds ${kindName}\` describes every parameter`,
    });
  }
}

function pathText(path: string[]): string {
  let s = path[0] ?? '';
  for (const p of path.slice(1)) s += /^\d+$/.test(p) ? `[${p}]` : `.${p}`;
  return s || 'parameters';
}

/** The literal node a JSON pointer leads to, as far as the source spells it out. */
function findNode(entry: Entry | undefined, path: string[]): Expr | undefined {
  let node: Expr | undefined = entry?.value;
  for (const p of path) {
    if (!node) return undefined;
    while (node.type === 'Paren') node = node.expr;
    if (node.type === 'List' && /^\d+$/.test(p)) {
      const next: Expr | undefined = node.items[Number(p)];
      if (!next) return node;
      node = next;
    } else if (node.type === 'Map') {
      const next: Expr | undefined = node.entries.find((m) => m.key === p)?.value;
      if (!next) return node;
      node = next;
    } else return node;
  }
  return node;
}

const TYPE_NAMES: Record<string, [string, string]> = {
  string: ['a string', 'strings'],
  number: ['a number', 'numbers'],
  integer: ['an integer', 'integers'],
  boolean: ['a boolean', 'booleans'],
  object: ['a map', 'maps'],
  array: ['a list', 'lists'],
  null: ['null', 'nulls'],
};

/** A schema in words, for messages: "a list of strings or a string". */
export function describeSchema(s: JsonSchema, plural = false, depth = 0): string {
  if (depth > 4) return plural ? 'values' : 'a value';
  const alts = (s.anyOf ?? s.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(alts)) return alts.map((a) => describeSchema(a, plural, depth + 1)).join(' or ');
  if (Array.isArray(s.enum)) return `one of ${(s.enum as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  if ('const' in s) return JSON.stringify(s.const);
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : [];
  if (types.length === 0) return plural ? 'values' : 'a value';
  return types
    .map((t) => {
      if (t === 'array' && s.items && typeof s.items === 'object' && !Array.isArray(s.items)) {
        return `${plural ? 'lists' : 'a list'} of ${describeSchema(s.items as JsonSchema, true, depth + 1)}`;
      }
      const names = TYPE_NAMES[t];
      return names ? names[plural ? 1 : 0] : t;
    })
    .join(' or ');
}
