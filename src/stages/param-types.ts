// The TypeScript type of a kind's parameters, computed from its JSON Schema.
// A kind declares its schema once (`as const`, or through the literal-typed
// fragments in ml/schema.ts); `ParamsOf<typeof schema>` is what its `run`
// receives, so the schema and the type cannot disagree. Only the keywords
// below give a type: `ObjectSchema` admits no property without one (a
// fragment whose `type` widened to `string` fails to compile), and
// test/stages/param-types.test.ts checks every registered kind's schema at
// run time the same way (`untypedProperties`).

import type { OutputRef, Value } from '../compiler/plan.js';

/** A JSON Schema node as a kind writes it, read-only (`as const`). */
export type SchemaNode = { readonly [keyword: string]: unknown };

type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'null' | 'array' | 'object';

/** A schema node `TypeOf` gives a precise type: one with a literal `type`, an `enum`, a `const`, or alternatives that are all such nodes. */
export type TypedNode =
  | {
      readonly type: JsonType | readonly JsonType[];
      readonly items?: TypedNode;
      readonly properties?: { readonly [name: string]: TypedNode };
      readonly additionalProperties?: boolean | TypedNode;
      readonly [keyword: string]: unknown;
    }
  | { readonly enum: readonly unknown[]; readonly [keyword: string]: unknown }
  | { readonly const: unknown; readonly [keyword: string]: unknown }
  | { readonly anyOf: readonly TypedNode[]; readonly [keyword: string]: unknown }
  | { readonly oneOf: readonly TypedNode[]; readonly [keyword: string]: unknown };

/** A kind's parameter schema: an object with named, typed properties. */
export interface ObjectSchema {
  readonly type: 'object';
  readonly properties: { readonly [name: string]: TypedNode };
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | TypedNode;
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type PrimitiveOf<T> = T extends 'string'
  ? string
  : T extends 'integer' | 'number'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'null'
        ? null
        : T extends 'array'
          ? Value[]
          : T extends 'object'
            ? { [key: string]: Value }
            : unknown;

/** The value type of one schema node (distributes over unions of nodes). */
export type TypeOf<S> = S extends { readonly enum: readonly (infer E)[] }
  ? E
  : S extends { readonly const: infer C }
    ? C
    : S extends { readonly anyOf: readonly (infer A)[] }
      ? TypeOf<A>
      : S extends { readonly oneOf: readonly (infer A)[] }
        ? TypeOf<A>
        : S extends { readonly type: 'array'; readonly items: infer I }
          ? TypeOf<I>[]
          : S extends { readonly type: 'object'; readonly properties: SchemaNode }
            ? ObjectOf<S>
            : S extends { readonly type: 'object'; readonly additionalProperties: infer A extends SchemaNode }
              ? { [key: string]: TypeOf<A> }
              : S extends { readonly type: infer T }
                ? T extends readonly (infer U)[]
                  ? PrimitiveOf<U>
                  : PrimitiveOf<T>
                : unknown;

type Props<S> = S extends { readonly properties: infer P } ? P : never;
type RequiredNames<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;
/** Properties with a default are always present: the compiler fills defaults in (ajv, useDefaults). */
type DefaultedNames<P> = { [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never }[keyof P];
type PresentNames<S> = (RequiredNames<S> & keyof Props<S>) | DefaultedNames<Props<S>>;

type ObjectOf<S> = Simplify<
  { -readonly [K in PresentNames<S> & keyof Props<S>]: TypeOf<Props<S>[K]> } & {
    -readonly [K in Exclude<keyof Props<S>, PresentNames<S>>]?: TypeOf<Props<S>[K]>;
  }
>;

/** The parameters a kind's `run` receives: validated against `S`, defaults filled, references replaced by paths. */
export type ParamsOf<S extends ObjectSchema> = ObjectOf<S>;

/**
 * The same parameters as the compiler sees them (`outputs`, `resources`,
 * `inputs`, `env`, `passEnv`): a reference to an upstream output is still
 * symbolic there, and may stand wherever a free string is accepted.
 */
export type Symbolic<T> = T extends string
  ? string extends T
    ? string | OutputRef
    : T
  : T extends readonly (infer E)[]
    ? Symbolic<E>[]
    : T extends object
      ? { [K in keyof T]: Symbolic<T[K]> }
      : T;

/** Keywords that carry the type of a node; a node with none of them gets `unknown`. */
const TYPING_KEYWORDS = ['type', 'enum', 'const', 'anyOf', 'oneOf'] as const;
const PRIMITIVES = new Set(['string', 'integer', 'number', 'boolean', 'null', 'array', 'object']);

/**
 * Where `TypeOf` would give `unknown`: the paths (`lr`, `argv.anyOf[1].items`)
 * of schema nodes none of whose typing keywords it understands. Empty for a
 * schema whose every property has a precise TypeScript counterpart.
 */
export function untypedProperties(schema: SchemaNode, path = ''): string[] {
  const problems: string[] = [];
  const at = (p: string) => (path ? `${path}.${p}` : p);
  if (!TYPING_KEYWORDS.some((k) => k in schema)) return [path || '(root)'];
  if (Array.isArray(schema.enum) || 'const' in schema) return [];
  for (const alt of ['anyOf', 'oneOf'] as const) {
    const branches = schema[alt];
    if (branches === undefined) continue;
    if (!Array.isArray(branches) || branches.length === 0) return [`${path}.${alt}`];
    branches.forEach((b: SchemaNode, i) => problems.push(...untypedProperties(b, `${path}.${alt}[${i}]`)));
    return problems;
  }
  const types: unknown[] = Array.isArray(schema.type) ? schema.type : [schema.type];
  const unknownType = types.find((t) => typeof t !== 'string' || !PRIMITIVES.has(t));
  if (unknownType !== undefined) return [`${path || '(root)'} (type ${JSON.stringify(unknownType)})`];
  if (types.includes('array') && schema.items !== undefined) problems.push(...untypedProperties(schema.items as SchemaNode, at('items')));
  if (types.includes('object')) {
    const props = schema.properties as Record<string, SchemaNode> | undefined;
    for (const [name, sub] of Object.entries(props ?? {})) problems.push(...untypedProperties(sub, at(name)));
    const extra = schema.additionalProperties;
    if (extra && typeof extra === 'object' && !props) problems.push(...untypedProperties(extra as SchemaNode, at('*')));
  }
  return problems;
}
