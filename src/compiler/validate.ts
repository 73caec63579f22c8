// Checks a stage instance's parameters against its kind's JSON Schema with
// ajv, filling in the schema's defaults. Each kind's schema is compiled once,
// on first use. References to other stages' outputs become absolute paths at
// run time, so they are validated as path strings.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { Entry, Expr } from './ast.js';
import type { Diagnostics } from './diagnostic.js';
import type { JsonSchema, KindInfo } from './kinds.js';
import { isOutputRef, type OutputRef, type SourceSpan, type Value } from './plan.js';
import { didYouMean } from './suggest.js';

let ajv: Ajv | undefined;
const validators = new WeakMap<KindInfo, ValidateFunction | Error>();

function validatorFor(kind: KindInfo): ValidateFunction | Error {
  let v = validators.get(kind);
  if (!v) {
    if (!ajv) {
      // verbose: errors carry their parentSchema, from which messages say what was expected.
      ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false, logger: false, verbose: true });
      addFormats.default(ajv);
    }
    try {
      v = ajv.compile(kind.params);
    } catch (e) {
      v = e instanceof Error ? e : new Error(String(e));
    }
    validators.set(kind, v);
  }
  return v;
}

const REF_PREFIX = '/__smke_ref__/';

function toChecked(v: Value, refs: OutputRef[]): unknown {
  if (isOutputRef(v)) {
    refs.push(v);
    return `${REF_PREFIX}${refs.length - 1}`;
  }
  if (Array.isArray(v)) return v.map((x) => toChecked(x, refs));
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toChecked(x, refs);
    return o;
  }
  return v;
}

function fromChecked(v: unknown, refs: OutputRef[]): Value {
  if (typeof v === 'string' && v.startsWith(REF_PREFIX)) {
    const ref = refs[Number(v.slice(REF_PREFIX.length))];
    if (ref) return ref;
  }
  if (Array.isArray(v)) return v.map((x) => fromChecked(x, refs));
  if (v !== null && typeof v === 'object') {
    const o: Record<string, Value> = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromChecked(x, refs);
    return o;
  }
  return v as Value;
}

export interface ValidationSite {
  kind: KindInfo;
  /** Parameter name -> its entry in the stage body. */
  entries: Map<string, Entry>;
  /** Where to point when a parameter is missing. */
  stageSpan: SourceSpan;
}

/** The parameters with defaults filled in, or undefined when they do not match the schema (reported). */
export function validateParams(
  params: Record<string, Value>,
  hasRefs: boolean,
  site: ValidationSite,
  diags: Diagnostics,
): Record<string, Value> | undefined {
  const validate = validatorFor(site.kind);
  if (validate instanceof Error) {
    diags.error('E0012', `the parameter schema of kind \`${site.kind.name}\` is invalid: ${validate.message}`, site.stageSpan, {
      label: 'cannot check these parameters',
      help: 'this is a bug in the stage kind: report it to its author',
    });
    return undefined;
  }
  // Without references the params are validated (and defaulted) in place: no copy on the hot path.
  const refs: OutputRef[] = [];
  const data = hasRefs ? (toChecked(params, refs) as Record<string, unknown>) : params;
  if (validate(data)) return hasRefs ? (fromChecked(data, refs) as Record<string, Value>) : params;
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
      const entry = site.entries.get(name);
      diags.error('E0012', `unknown parameter \`${name}\` for kind \`${kindName}\``, entry?.keySpan ?? site.stageSpan, {
        label: 'not a parameter of this kind',
        help: didYouMean(name, known) ?? `the parameters of \`${kindName}\` are ${known.map((k) => `\`${k}\``).join(', ')}`,
      });
      continue;
    }
    if (e.keyword === 'required' && path.length === 0) {
      const name = String((e.params as { missingProperty: string }).missingProperty);
      const schema = (site.kind.params.properties as Record<string, JsonSchema> | undefined)?.[name];
      diags.error('E0012', `missing parameter \`${name}\` for kind \`${kindName}\``, site.stageSpan, {
        label: `needs \`${name}\``,
        help: `add \`${name} = ...\`${schema ? ` (${describeSchema(schema)})` : ''}`,
      });
      continue;
    }
    const where = pathText(path);
    const node = findNode(site.entries.get(path[0] ?? ''), path.slice(1));
    const span = node?.span ?? site.entries.get(path[0] ?? '')?.keySpan ?? site.stageSpan;
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
