// A kind's parameter type is computed from its schema (src/stages/param-types.ts).
// The type-level half of this file is checked by `tsc -p tsconfig.test.json`:
// a wrong `ParamsOf` or an accepted untyped schema fails the type check. The
// run-time half checks every registered kind's schema the same way, for a kind
// that reached the registry without `defineKind`.

import { describe, expect, expectTypeOf, it } from 'vitest';
import type { OutputRef } from '../../src/compiler/plan.js';
import { defineKind, type ObjectSchema, type ParamsOf, type Symbolic } from '../../src/stages/stage-kind.js';
import { untypedProperties } from '../../src/stages/param-types.js';
import { registry } from '../../src/stages/registry.js';

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['model'],
  properties: {
    model: { type: 'string', minLength: 1 },
    lr: { type: 'number', default: 1e-3 },
    steps: { type: 'integer', minimum: 1 },
    mode: { enum: ['linear', 'full'], default: 'linear' },
    pairs: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }] },
    env: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
    sizes: {
      type: 'object',
      additionalProperties: false,
      default: { train: 1 },
      properties: { train: { type: 'integer', default: 1 }, val: { type: 'integer' } },
    },
    shell: { type: 'boolean', default: false },
  },
} as const satisfies ObjectSchema;

describe('ParamsOf', () => {
  it('is required where the schema requires or defaults a property, optional elsewhere, and typed by its keywords', () => {
    expectTypeOf<ParamsOf<typeof schema>>().toEqualTypeOf<{
      model: string;
      lr: number;
      mode: 'linear' | 'full';
      env: { [key: string]: string };
      sizes: { train: number; val?: number };
      shell: boolean;
      steps?: number;
      pairs?: string | string[];
    }>();
  });

  it('lets a reference stand for a free string where the compiler calls the kind, never for an enum', () => {
    type S = Symbolic<ParamsOf<typeof schema>>;
    expectTypeOf<S['model']>().toEqualTypeOf<string | OutputRef>();
    expectTypeOf<S['mode']>().toEqualTypeOf<'linear' | 'full'>();
    expectTypeOf<S['lr']>().toEqualTypeOf<number>();
  });

  it('refuses a schema property whose type it cannot read', () => {
    const widened: { type: string } = { type: 'string' };
    // @ts-expect-error -- `type: string` (a fragment without `as const`) would give the property no type
    const bad = { type: 'object', properties: { x: widened } } as const satisfies ObjectSchema;
    // @ts-expect-error -- a property with no typing keyword at all
    const bare = { type: 'object', properties: { x: { description: 'anything' } } } as const satisfies ObjectSchema;
    expect([bad, bare]).toHaveLength(2);
  });

  it('types the methods of a kind declared with defineKind', () => {
    const kind = defineKind({
      name: 'test.kind',
      version: 1,
      summary: 'a kind for this test',
      params: schema,
      outputs(params) {
        expectTypeOf(params.model).toEqualTypeOf<string | OutputRef>();
        return {};
      },
      async run(_ctx, params) {
        expectTypeOf(params.steps).toEqualTypeOf<number | undefined>();
        expectTypeOf(params.sizes.train).toEqualTypeOf<number>();
      },
    });
    expect(kind.params).toBe(schema);
  });
});

describe('untypedProperties', () => {
  it('finds no property without a TypeScript type in any registered kind', () => {
    const problems = registry()
      .all()
      .flatMap((k) => untypedProperties(k.params).map((p) => `${k.name}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('names the properties, items and alternatives it cannot type', () => {
    const problems = untypedProperties({
      type: 'object',
      properties: {
        ok: { type: 'string' },
        bare: { description: 'no type' },
        odd: { type: 'date' },
        list: { type: 'array', items: { minLength: 1 } },
        either: { anyOf: [{ type: 'string' }, { pattern: 'x' }] },
        nested: { type: 'object', properties: { deep: { default: 1 } } },
      },
    });
    expect(problems).toEqual(['bare', 'odd (type "date")', 'list.items', 'either.anyOf[1]', 'nested.deep']);
  });
});
